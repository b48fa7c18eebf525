"""`darkarchive`: crawl, serve the fixture markets, export, and the end-to-end demo."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from crawler.sources.loader import SourceConfigError
    from pipelines.store.connect import ArchiveConnection

logger = logging.getLogger(__name__)


def home() -> Path:
    """Where darkarchive keeps its data: `DARKARCHIVE_HOME`, else ./var."""
    return Path(os.environ.get("DARKARCHIVE_HOME", "var")).resolve()


DEMO_DB = "darkarchive_demo"


def db_name() -> str:
    return os.environ.get("DARKARCHIVE_DB", "darkarchive")


@contextmanager
def archive_connection() -> Iterator[ArchiveConnection]:
    """MONGODB_URI when set, else the embedded server on DARKARCHIVE_HOME/mongo."""
    from pipelines.store.connect import open_database

    with open_database(data_dir=home() / "mongo", db_name=db_name()) as connection:
        yield connection


def _crawl_overrides(connection: ArchiveConnection, log_level: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {"ARCHIVE_DB_NAME": db_name(), "LOG_LEVEL": log_level}
    if connection.embedded:  # a loopback URI without credentials: safe to pass as a setting
        overrides["ARCHIVE_MONGO_URI"] = connection.uri_redacted
    return overrides


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawler.runner import CrawlJob, crawl_settings, run_crawls
    from crawler.sources.loader import SourceConfigError, load_source

    try:
        load_source(args.source)  # a bad file fails here, before anything is fetched
    except SourceConfigError as exc:
        if exc.path.is_file():
            record_unloadable_source(exc)
        raise
    with archive_connection() as connection:
        overrides = _crawl_overrides(connection, args.log_level)
        if args.resume:
            overrides["ARCHIVE_RESUME_RUN"] = args.resume
        for pair in args.set:
            key, _, value = pair.partition("=")
            overrides[key] = value
        started = time.monotonic()
        stats = run_crawls([CrawlJob(args.source, args.mirror)], crawl_settings(overrides))
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
        print(
            f"  {kind}s: {summary.get('observed', 0)} observed, {summary.get('new', 0)} new, "
            f"{summary.get('changed', 0)} changed, {summary.get('delisted', 0)} delisted"
        )
    print(f"  feedback: {counts.get('feedback_new', 0)} new entries")
    print(f"  problems recorded: {counts.get('problems', 0)}")
    if elapsed:
        print(f"  crawl time: {elapsed:.1f} s, {counts.get('pages', 0) / elapsed:.1f} pages/s")


def print_archive_location(connection: ArchiveConnection) -> None:
    where = f", embedded server, data in {home() / 'mongo'}" if connection.embedded else ""
    print(f"archive: {connection.uri_redacted} database {connection.db.name!r}{where}")


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the demo market, crawl day 1 and day 2 into the archive, print what happened.

    The demo has its own database, emptied first, so that running it twice tells the same
    story instead of sending the market back in time.
    """
    from crawler.runner import CrawlJob, crawl_settings, run_crawls
    from fixtures.server import FixtureServer

    os.environ["DARKARCHIVE_DB"] = DEMO_DB
    with FixtureServer(market="demo", day=args.days[0]) as server, archive_connection() as conn:
        conn.client.drop_database(DEMO_DB)
        print(f"demo market serving on {server.url}; archive database {DEMO_DB!r} emptied")
        jobs = [CrawlJob("demo", server.url, before=partial(server.set_day, d)) for d in args.days]
        started = time.monotonic()
        stats = run_crawls(jobs, crawl_settings(_crawl_overrides(conn, args.log_level)))
        elapsed = time.monotonic() - started
        run_ids = [s["darkarchive/run_id"] for s in stats if "darkarchive/run_id" in s]
        for day, run_id in zip(args.days, run_ids, strict=False):
            print(f"day {day} -> ", end="")
            print_run_summary(conn, run_id)
        print(f"{len(run_ids)} crawls in {elapsed:.1f} s")
        print_archive_location(conn)
        print(f"export a run: DARKARCHIVE_DB={DEMO_DB} darkarchive export demo [--run RUN]")
        return 0 if len(run_ids) == len(args.days) else 1


def cmd_export(args: argparse.Namespace) -> int:
    from pipelines.store.export import export_run, write_jsonl

    with archive_connection() as connection:
        try:
            write_jsonl(export_run(connection.db, args.source, args.run), sys.stdout)
        except KeyError as exc:
            print(f"darkarchive: nothing to export: {exc.args[0]}", file=sys.stderr)
            return 1
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """A source's runs, newest last: tells a failed crawl from a market that emptied."""
    from pipelines.store.queries import runs

    with archive_connection() as connection:
        history = runs(connection.db, args.source)
        if not history:
            print(f"darkarchive: no runs of source {args.source!r}", file=sys.stderr)
            return 1
        for run in history:
            counts = run.get("counts", {})
            listings = counts.get("listing", {})
            started = run.get("started_at")
            print(
                f"{run['_id']}  {started:%Y-%m-%d %H:%M}  {run['status']:<8}  "
                f"pages {counts.get('pages', 0):>6}  listings {listings.get('observed', 0):>6} "
                f"(+{listings.get('new', 0)} ~{listings.get('changed', 0)} "
                f"-{listings.get('delisted', 0)})"
            )
            for reason in run.get("reasons", []):
                print(f"    why: {reason}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Every version of one listing or vendor, with the runs and dates it was valid in."""
    from pipelines.store.export import jsonable, write_jsonl
    from pipelines.store.queries import entity_history

    with archive_connection() as connection:
        history = entity_history(connection.db, args.source, args.kind, args.key)
        if not history:
            print(
                f"darkarchive: no {args.kind} {args.key!r} in source {args.source!r}",
                file=sys.stderr,
            )
            return 1
        write_jsonl((jsonable(v) for v in history), sys.stdout)
    return 0


def cmd_reparse(args: argparse.Namespace) -> int:
    """Re-read a run's archived pages with today's parser and list what would differ."""
    from crawler.reparse import reparse_run
    from crawler.sources.loader import load_source
    from pipelines.store.export import write_jsonl
    from pipelines.store.queries import latest_run

    source = load_source(args.source)
    with archive_connection() as connection:
        run_id = args.run or (latest_run(connection.db, source.id) or {}).get("_id")
        if run_id is None:
            print(f"darkarchive: no run of source {source.id!r} to reparse", file=sys.stderr)
            return 1
        report = reparse_run(connection.db, source, run_id)
        write_jsonl(report.differences, sys.stdout)
        print(
            f"reparsed {report.pages} archived pages of {run_id}: {report.same} entities read "
            f"the same, {len(report.differences)} differ, {len(report.problems)} problems",
            file=sys.stderr,
        )
    return 0


def cmd_fixtures_serve(args: argparse.Namespace) -> int:
    from fixtures.server import serve_forever

    serve_forever(args.market, args.day, args.host, args.port)
    return 0


def cmd_fixtures_truth(args: argparse.Namespace) -> int:
    from fixtures.market import truth

    json.dump(truth(args.market, args.day), sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


def cmd_fixtures_save_page(args: argparse.Namespace) -> int:
    """Fetch one page and save it as a replay case (clearnet sources and loopback only)."""
    import urllib.error
    import urllib.request

    from crawler.replay import save_case
    from crawler.sources.loader import load_source

    source = load_source(args.source)
    if source.network == "tor":
        print("saving pages of a Tor source is not supported yet (no Tor routing)", file=sys.stderr)
        return 2
    fetched_at = datetime.now(UTC)
    try:
        with urllib.request.urlopen(args.url, timeout=30) as response:
            body, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:  # a 404 or a 503 page is a page worth replaying
        body, status, headers = error.read(), error.code, dict(error.headers)
    except (urllib.error.URLError, TimeoutError) as error:
        print(f"darkarchive: cannot fetch {args.url}: {error}", file=sys.stderr)
        return 1
    case_dir = save_case(
        source,
        url=args.url,
        kind=args.kind,
        case=args.case,
        status=status,
        headers=headers,
        body=body,
        fetched_at=fetched_at,
    )
    print(f"saved {args.url} as {case_dir}; review {case_dir / 'output.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darkarchive", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="Scrapy log level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    crawl = commands.add_parser("crawl", help="crawl one source into the archive")
    crawl.add_argument("source", help="source id (config/sources/<id>.yaml) or a YAML path")
    crawl.add_argument("--mirror", default="", help="base URL to crawl instead of the mirrors")
    crawl.add_argument("--resume", default="", help="run id to resume instead of a new run")
    crawl.add_argument(
        "-s", "--set", action="append", default=[], metavar="NAME=VALUE",
        help="a Scrapy setting for this crawl (e.g. -s ARCHIVE_BATCH_SIZE=50); never a secret",
    )  # fmt: skip
    crawl.set_defaults(func=cmd_crawl)

    demo = commands.add_parser("demo", help="serve the demo market and crawl it on two days")
    demo.add_argument("--days", type=int, nargs="+", default=[1, 2])
    demo.set_defaults(func=cmd_demo)

    export = commands.add_parser("export", help="print a run's listings, vendors and feedback")
    export.add_argument("source")
    export.add_argument("--run", default=None, help="run id (default: latest)")
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    export.set_defaults(func=cmd_export)

    runs = commands.add_parser("runs", help="a source's runs with status, counts and reasons")
    runs.add_argument("source")
    runs.set_defaults(func=cmd_runs)

    history = commands.add_parser("history", help="every version of one listing or vendor")
    history.add_argument("source")
    history.add_argument("key", help="listing id (or vendor id with --kind vendor)")
    history.add_argument("--kind", choices=["listing", "vendor"], default="listing")
    history.set_defaults(func=cmd_history)

    reparse = commands.add_parser(
        "reparse", help="re-read a run's archived pages with today's parser; list differences"
    )
    reparse.add_argument("source")
    reparse.add_argument("--run", default=None, help="run id (default: latest)")
    reparse.set_defaults(func=cmd_reparse)

    fixtures = commands.add_parser("fixtures", help="the synthetic fixture markets")
    fixture_commands = fixtures.add_subparsers(dest="fixtures_command", required=True)
    serve = fixture_commands.add_parser("serve", help="serve a fixture market over HTTP")
    serve.add_argument("--market", default="demo")
    serve.add_argument("--day", type=int, default=1)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8800)
    serve.set_defaults(func=cmd_fixtures_serve)
    truth = fixture_commands.add_parser("truth", help="print a market's ground truth for a day")
    truth.add_argument("--market", default="demo")
    truth.add_argument("--day", type=int, default=1)
    truth.set_defaults(func=cmd_fixtures_truth)
    save = fixture_commands.add_parser("save-page", help="save a page as a replay fixture")
    save.add_argument("source")
    save.add_argument("url")
    save.add_argument("--kind", choices=["index", "listing", "vendor"], required=True)
    save.add_argument("--case", required=True, help="case name, e.g. listing-with-tiers")
    save.set_defaults(func=cmd_fixtures_save_page)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from crawler.sources.loader import SourceConfigError
    from pipelines.store.connect import ArchiveUnavailableError
    from pipelines.store.embedded import EmbeddedMongoError

    try:
        return int(args.func(args))
    except SourceConfigError as exc:
        print(f"darkarchive: bad source definition: {exc}", file=sys.stderr)
        return 2
    except (ArchiveUnavailableError, EmbeddedMongoError) as exc:
        print(f"darkarchive: {exc}; nothing was crawled or changed", file=sys.stderr)
        return 3
    except BrokenPipeError:  # `darkarchive export … | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
