"""`darkarchive crawl` and `darkarchive demo`: runs into the archive."""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from crawler.commands.shared import (
    archive_connection,
    db_name,
    print_archive_location,
    print_run_summary,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from crawler.sources.loader import SourceConfigError
    from fixtures.server import FixtureServer
    from pipelines.store.connect import ArchiveConnection

DEMO_DB = "darkarchive_demo"


def _crawl_overrides(connection: ArchiveConnection, log_level: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {"ARCHIVE_DB_NAME": db_name(), "LOG_LEVEL": log_level}
    if connection.embedded:  # a loopback URI without credentials: safe to pass as a setting
        overrides["ARCHIVE_MONGO_URI"] = connection.uri_redacted
    return overrides


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawler.commands.tor import tor_for
    from crawler.runner import CrawlJob, crawl_settings, run_crawls
    from crawler.sources.loader import SourceConfigError, load_source

    try:
        source = load_source(args.source)  # a bad file fails here, before anything is fetched
    except SourceConfigError as exc:
        if exc.path.is_file():
            record_unloadable_source(exc)
        raise
    with archive_connection() as connection, tor_for(source) as tor_settings:
        overrides = {**_crawl_overrides(connection, args.log_level), **tor_settings}
        if args.resume:
            overrides["ARCHIVE_RESUME_RUN"] = args.resume
        for pair in args.set:
            key, _, value = pair.partition("=")
            overrides[key] = value
        started = time.monotonic()
        stats = run_crawls(
            [CrawlJob(args.source, ",".join(args.mirror))], crawl_settings(overrides)
        )
        elapsed = time.monotonic() - started
        final = stats[0] if stats else {}
        run_id, status = final.get("darkarchive/run_id"), final.get("darkarchive/run_status")
        if status == "archive_unavailable":
            print(
                f"run {run_id}: the archive database failed during the crawl; "
                f"{final.get('darkarchive/unstored_pages', 0)} fetched page(s) not stored. "
                f"Resume with: darkarchive crawl {args.source} --resume {run_id}",
                file=sys.stderr,
            )
            return 1
        if status is None or run_id is None:
            reason = final.get("darkarchive/open_error", "see the log above")
            print(f"darkarchive: the crawl did not run: {reason}", file=sys.stderr)
            return 1
        print_run_summary(connection, run_id, elapsed=elapsed)
        print_archive_location(connection)
        return 0 if status in ("complete", "partial") else 1


def record_unloadable_source(error: SourceConfigError) -> None:
    """A scheduled crawl that could not start leaves a failed run, so the gap is explained."""
    from pipelines.store.archive import Archive

    with archive_connection() as connection:
        archive = Archive(connection.db)
        archive.ensure_indexes()
        run = archive.open_run(
            error.path.stem,
            parser_version="unloaded",
            started_at=datetime.now(UTC),
            config={"file": str(error.path)},
        )
        archive.record_event(run, kind="config", reason=str(error))
        archive.close_run(run, status="failed", counts={}, reasons=[str(error)])
        print(f"run {run.run_id}: failed (bad source definition)")


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the demo market, crawl day 1 and day 2 into the archive, print what happened.

    The demo has its own database, emptied first, so that running it twice tells the same
    story instead of sending the market back in time. With `--tor` the market is an onion
    service on a private Tor network on loopback, crawled as the source `demo-onion`.
    """
    from crawler.runner import CrawlJob, crawl_settings, run_crawls

    os.environ["DARKARCHIVE_DB"] = DEMO_DB
    with ExitStack() as stack:
        conn = stack.enter_context(archive_connection())
        url, server, source, tor_settings = stack.enter_context(_demo_market(args))
        conn.client.drop_database(DEMO_DB)
        print(f"demo market serving on {url}; archive database {DEMO_DB!r} emptied")
        jobs = [CrawlJob(source, url, before=partial(server.set_day, d)) for d in args.days]
        settings = {**_crawl_overrides(conn, args.log_level), **tor_settings}
        started = time.monotonic()
        stats = run_crawls(jobs, crawl_settings(settings))
        elapsed = time.monotonic() - started
        run_ids = [s["darkarchive/run_id"] for s in stats if "darkarchive/run_id" in s]
        for day, run_id in zip(args.days, run_ids, strict=False):
            print(f"day {day} -> ", end="")
            print_run_summary(conn, run_id)
        print(f"{len(run_ids)} crawls in {elapsed:.1f} s")
        print_archive_location(conn)
        print(f"export a run: DARKARCHIVE_DB={DEMO_DB} darkarchive export {source} [--run RUN]")
        return 0 if len(run_ids) == len(args.days) else 1


@contextmanager
def _demo_market(
    args: argparse.Namespace,
) -> Iterator[tuple[str, FixtureServer, str, dict[str, Any]]]:
    """(URL, server, source id, Tor settings): the fixture server, plain or as an onion."""
    from crawler.commands.shared import home
    from fixtures.server import FixtureServer

    if not args.tor:
        with FixtureServer(market="demo", day=args.days[0]) as server:
            yield server.url, server, "demo", {}
        return
    from fixtures.onion import onion_market

    print("starting a private Tor network on loopback (usually 20-40 s)...", flush=True)
    with onion_market("demo", args.days[0], home() / "tornet") as onion:
        yield onion.url, onion.server, "demo-onion", onion.endpoint.settings()
