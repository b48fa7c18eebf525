"""`darkarchive crawl` and `darkarchive demo`: runs into the archive."""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from crawler import exit_codes
from crawler.commands.shared import (
    archive_connection,
    db_name,
    print_archive_location,
    print_run_summary,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from crawler.alerts import AlertsConfig
    from crawler.sources.loader import SourceConfigError
    from fixtures.server import FixtureServer
    from pipelines.store.connect import ArchiveConnection

DEMO_DB = "darkarchive_demo"
LEASE_POLL = 2.0  # seconds between looks at a held lease with --wait


def _crawl_overrides(connection: ArchiveConnection, log_level: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {"ARCHIVE_DB_NAME": db_name(), "LOG_LEVEL": log_level}
    if connection.embedded:  # a loopback URI without credentials: safe to pass as a setting
        overrides["ARCHIVE_MONGO_URI"] = connection.uri_redacted
    return overrides


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawler.alerts import load_alerts_config
    from crawler.commands.tor import tor_for
    from crawler.runner import CrawlJob, crawl_settings, run_crawls
    from crawler.sources.loader import SourceConfigError, load_source

    try:
        source = load_source(args.source)  # a bad file fails here, before anything is fetched
    except SourceConfigError as exc:
        # Only a source named by its id has a history the failure belongs in: a YAML path
        # (a copy being edited, a file elsewhere) says nothing trustworthy about its source,
        # and its file name may be that of a real source.
        if exc.path.is_file() and not _is_yaml_path(args.source):
            record_unloadable_source(exc)
        raise
    alerts = load_alerts_config()  # a bad alerts file fails before anything is fetched
    with archive_connection() as connection:
        from crawler.commands.spool import flush_before_crawl

        # A spool left by an earlier run of the source is written (and its run closed) first.
        spool_refusal = flush_before_crawl(connection, source.id)
        if spool_refusal is not None:
            print(f"darkarchive: refused: {spool_refusal}", file=sys.stderr)
            return exit_codes.REFUSED
        # Asked before Scrapy starts; the pipeline's lease is the guarantee against races.
        holder = _lease_holder(connection, source.id, wait=args.wait)
        if holder is not None:
            print(f"darkarchive: refused: source {source.id} is being crawled by {holder}")
            return exit_codes.REFUSED
        if args.resume:
            from pipelines.store.runs import ResumeRefusedError, resumable_run

            try:
                resumable_run(connection.db, args.resume, source=source.id)
            except ResumeRefusedError as exc:
                print(f"darkarchive: refused: {exc}", file=sys.stderr)
                return exit_codes.REFUSED
        with tor_for(source) as tor_settings:
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
        code = _report(connection, args.source, final, elapsed)
        if final.get("darkarchive/run_status") in exit_codes.BY_STATUS:
            _alert(connection, final["darkarchive/run_id"], alerts)
        return code


def _alert(connection: ArchiveConnection, run_id: str, alerts: AlertsConfig) -> None:
    """Health checks on the closed run, delivered to the team; never changes the verdict."""
    from pymongo.errors import PyMongoError

    from crawler.alerts import alert_on_run

    try:
        findings = alert_on_run(connection.db, run_id, config=alerts)
    except PyMongoError as exc:
        print(f"darkarchive: run {run_id} not checked for alerts: {exc}", file=sys.stderr)
        return
    for finding in findings:
        print(f"  {finding.severity}: {finding.reason}", file=sys.stderr)


def _report(
    connection: ArchiveConnection, source: str, final: dict[str, Any], elapsed: float
) -> int:
    """Say what became of the crawl, and the exit code a scheduler acts on."""
    run_id, status = final.get("darkarchive/run_id"), final.get("darkarchive/run_status")
    refused = final.get("darkarchive/refused")
    if refused:
        print(f"darkarchive: refused: {refused}", file=sys.stderr)
    if refused and run_id is None:  # no run was opened (the lease, a --resume)
        return exit_codes.REFUSED
    if status in ("spooled", "spool_full"):
        _report_spool(source, run_id, final)
        return exit_codes.DATABASE_UNREACHABLE
    if status is None or run_id is None:
        reason = final.get("darkarchive/open_error", "see the log above")
        print(f"darkarchive: the crawl did not run: {reason}", file=sys.stderr)
        return exit_codes.FAILED
    print_run_summary(connection, run_id, elapsed=elapsed)
    print_archive_location(connection)
    spooled = final.get("darkarchive/spooled_pages", 0)
    if spooled:
        print(
            f"the archive database was unreachable for {final['darkarchive/outage_seconds']} s: "
            f"{spooled} page(s) were spooled and written when it was back"
        )
    reused = final.get("darkarchive/pages_from_archive", 0)
    if reused:
        print(f"resumed: {reused} page(s) read back from the archive, not fetched again")
    if status == "interrupted":
        print(f"resume with: darkarchive crawl {source} --resume {run_id}", file=sys.stderr)
    if refused:  # a paused source: its run records why nothing was fetched
        return exit_codes.REFUSED
    return exit_codes.BY_STATUS.get(status, exit_codes.FAILED)


def _report_spool(source: str, run_id: str | None, final: dict[str, Any]) -> None:
    """The run is open and its pages wait in the spool: say exactly what, and what next."""
    from pathlib import Path

    from pipelines.store.spool import Spool

    summary = Spool(Path(final["darkarchive/spool"])).summary()
    print(
        f"run {run_id}: the archive database was unreachable when the crawl ended; "
        f"{summary.describe()} are kept in the spool {final['darkarchive/spool']}",
        file=sys.stderr,
    )
    lost = final.get("darkarchive/lost_pages", 0)
    if final.get("darkarchive/run_status") == "spool_full":
        print(
            f"run {run_id}: the crawl stopped: {final.get('darkarchive/spool_error')}; "
            f"{lost} fetched page(s) were not kept. Write the spool with: darkarchive spool "
            f"flush --run {run_id}, then resume with: darkarchive crawl {source} --resume "
            f"{run_id}",
            file=sys.stderr,
        )
        return
    print(
        f"Write them and close the run with: darkarchive spool flush --run {run_id} "
        f"(the next crawl of {source} does it first)",
        file=sys.stderr,
    )


def _lease_holder(connection: ArchiveConnection, source: str, *, wait: bool) -> str | None:
    """Who holds the source now, or None; with `wait`, None once they are done.

    A holder found dead (its PID gone, or its lease expired) is cleared at once and its run
    closed as `interrupted`.
    """
    from pipelines.store.leases import current_holder, reap_dead_holder

    said = False
    while True:
        reap_dead_holder(connection.db, source)
        holder = current_holder(connection.db, source)
        if holder is None:
            return None
        if not wait:
            return holder.describe()
        if not said:
            print(f"waiting: source {source} is being crawled by {holder.describe()}", flush=True)
            said = True
        time.sleep(LEASE_POLL)


def _is_yaml_path(argument: str) -> bool:
    """`crawl path/to/x.yaml` rather than `crawl x` (as `load_source` tells them apart)."""
    from pathlib import Path

    return Path(argument).suffix in {".yaml", ".yml"}


def record_unloadable_source(error: SourceConfigError) -> None:
    """A scheduled crawl that could not start leaves a failed run, so the gap is explained.

    Not while another crawl holds the source: a run opened beside it would supersede it.
    """
    from pipelines.store.archive import Archive
    from pipelines.store.leases import LeaseHeldError, SourceLease

    with archive_connection() as connection:
        archive = Archive(connection.db)
        archive.ensure_indexes()
        lease = SourceLease(connection.db, error.path.stem)
        try:
            lease.acquire()
        except LeaseHeldError as held:
            print(f"not recorded as a run: {held}", file=sys.stderr)
            return
        try:
            run = archive.open_run(
                error.path.stem,
                parser_version="unloaded",
                started_at=datetime.now(UTC),
                config={"file": str(error.path)},
            )
            archive.record_event(run, kind="config", reason=str(error))
            archive.close_run(run, status="failed", counts={}, reasons=[str(error)])
        finally:
            lease.release()
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
