"""`darkarchive spool status|flush`: pages a crawl kept locally while the database was away."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from crawler import exit_codes
from crawler.commands.shared import archive_connection, db_name, home

if TYPE_CHECKING:
    import argparse

    from pipelines.store.connect import ArchiveConnection
    from pipelines.store.spool import Spool

logger = logging.getLogger(__name__)


def _spools(run: str | None, source: str | None = None) -> list[Spool]:
    from pipelines.store.spool import Spool, pending_spools, spool_root

    root = spool_root(home())
    if run:
        spool = Spool(root / run)
        return [spool] if spool.exists() else []
    return pending_spools(root, source)


def cmd_spool_status(args: argparse.Namespace) -> int:
    """One paragraph per spool: its run, what it holds, whether a crawl still writes it."""
    from pipelines.store.spool import SpoolBusyError

    spools = _spools(args.run)
    if not spools:
        print("no spool: every fetched page is in the archive")
        return 0
    for spool in spools:
        summary = spool.summary()
        try:
            spool.lock()
            spool.unlock()
            who = "no crawl writes it"
        except SpoolBusyError:
            who = "a running crawl is writing it"
        since = f"{summary.since:%Y-%m-%d %H:%M:%S} UTC" if summary.since else "?"
        verdict = summary.verdict["status"] if summary.verdict else "none yet (run not ended)"
        print(f"run {spool.run_id}: {summary.describe()}; {who}")
        print(f"  database unreachable since {since}; verdict kept: {verdict}")
        print(f"  {spool.folder} ({summary.size} bytes)")
        if summary.damage is not None:
            print(f"  damaged: {summary.damage.describe()}")
    return 0


def cmd_spool_flush(args: argparse.Namespace) -> int:
    """Write every spool (or `--run`'s) into the archive and close its run."""
    spools = _spools(args.run)
    if args.run and not spools:
        print(f"darkarchive: no spool of run {args.run}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    if not spools:
        print("no spool to flush")
        return 0
    with archive_connection() as connection:
        refused = [why for spool in spools if (why := _flush(connection, spool)) is not None]
    for why in refused:
        print(f"darkarchive: refused: {why}", file=sys.stderr)
    return exit_codes.REFUSED if refused else 0


def _flush(connection: ArchiveConnection, spool: Spool) -> str | None:
    """Flush one spool and print what it wrote; the reason if it cannot be flushed."""
    from pipelines.store.runs import ResumeRefusedError
    from pipelines.store.spool import SpoolError
    from pipelines.store.spool_flush import flush_spool

    try:
        report = flush_spool(connection.db, spool, db_name=db_name())
    except (SpoolError, ResumeRefusedError) as exc:
        return f"spool of run {spool.run_id} not written: {exc}"
    print(report.describe())
    if report.summary.damage is not None:
        print(f"  damaged: {report.summary.damage.describe()}", file=sys.stderr)
    return None


def flush_before_crawl(connection: ArchiveConnection, source: str) -> str | None:
    """A source's unflushed spools are written (the database answers) before it is crawled
    again; the refusal, in one line, if one cannot be. A spool a live crawl still writes is
    left to it (its lease refuses this crawl)."""
    from pipelines.store.spool import SpoolBusyError

    for spool in _spools(None, source):
        try:
            spool.lock()
            spool.unlock()
        except SpoolBusyError:
            continue
        why = _flush(connection, spool)
        if why is not None:
            return why
    return None
