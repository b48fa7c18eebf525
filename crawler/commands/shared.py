"""Where the archive is, and how a run is summarised for the team."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pipelines.store.connect import ArchiveConnection


def home() -> Path:
    from pipelines.store.connect import darkarchive_home

    return darkarchive_home()


def db_name() -> str:
    from pipelines.store.connect import database_name

    return database_name()


@contextmanager
def archive_connection() -> Iterator[ArchiveConnection]:
    """MONGODB_URI when set, else the embedded server on DARKARCHIVE_HOME/mongo."""
    from pipelines.store.connect import open_database

    with open_database(data_dir=home() / "mongo", db_name=db_name()) as connection:
        yield connection


def print_run_summary(
    connection: ArchiveConnection, run_id: str, *, elapsed: float | None = None
) -> None:
    from pipelines.store.queries import get_run

    run = get_run(connection.db, run_id) or {}
    counts = run.get("counts", {})
    print(f"run {run_id}: {run.get('status')}")
    for reason in run.get("reasons", []):
        print(f"  why: {reason}")
    states = ", ".join(f"{k} {v}" for k, v in sorted(counts.get("pages_by_state", {}).items()))
    print(f"  pages: {counts.get('pages', 0)} ({states})")
    for kind in ("listing", "vendor"):
        summary = counts.get(kind, {})
        by_parser = summary.get("changed_with_new_parser", 0)
        print(
            f"  {kind}s: {summary.get('observed', 0)} observed, {summary.get('new', 0)} new, "
            f"{summary.get('changed', 0)} changed"
            + (f" ({by_parser} under a new parser version)" if by_parser else "")
            + f", {summary.get('delisted', 0)} delisted"
        )
    print(f"  feedback: {counts.get('feedback_new', 0)} new entries")
    print(f"  problems recorded: {counts.get('problems', 0)}")
    if elapsed:
        print(f"  crawl time: {elapsed:.1f} s, {counts.get('pages', 0) / elapsed:.1f} pages/s")


def print_archive_location(connection: ArchiveConnection) -> None:
    where = (
        f", embedded server, data in {home() / 'mongo'} (shared by later commands; "
        "`darkarchive db stop` stops it, else it stops when idle)"
        if connection.embedded
        else ""
    )
    print(f"archive: {connection.uri_redacted} database {connection.db.name!r}{where}")
