"""`darkarchive`: crawl, serve the fixture markets, export, and the end-to-end demo."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from crawler import exit_codes
from crawler.commands.archive import cmd_history, cmd_reparse, cmd_runs
from crawler.commands.crawl import cmd_crawl, cmd_demo
from crawler.commands.db import cmd_db_start, cmd_db_status, cmd_db_stop
from crawler.commands.export import cmd_export
from crawler.commands.fixtures import (
    cmd_fixtures_save_page,
    cmd_fixtures_serve,
    cmd_fixtures_truth,
)
from crawler.commands.fixtures_test import cmd_fixtures_test
from crawler.commands.query import add_parser_option, add_query_commands
from crawler.commands.rates import add_rates_commands
from crawler.commands.session import cmd_session_check, cmd_session_set, cmd_session_show
from crawler.commands.spool import cmd_spool_flush, cmd_spool_status
from crawler.commands.tor import cmd_tor_check
from crawler.commands.vendors import cmd_vendors_link, cmd_vendors_show
from crawler.scheduling.commands import add_schedule_commands

if TYPE_CHECKING:
    from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darkarchive", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="Scrapy log level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True)

    crawl = commands.add_parser("crawl", help="crawl one source into the archive")
    crawl.add_argument("source", help="source id (config/sources/<id>.yaml) or a YAML path")
    crawl.add_argument(
        "--mirror", action="append", default=[],
        help="base URL to crawl instead of the source's mirrors (repeat for several)",
    )  # fmt: skip
    crawl.add_argument(
        "--resume", default="",
        help="continue this interrupted run (pages it archived are not fetched again)",
    )  # fmt: skip
    crawl.add_argument(
        "--wait", action="store_true",
        help="if another crawl holds the source, wait for it instead of exiting with code 5",
    )  # fmt: skip
    crawl.add_argument(
        "-s", "--set", action="append", default=[], metavar="NAME=VALUE",
        help="a Scrapy setting for this crawl (e.g. -s ARCHIVE_BATCH_SIZE=50); never a secret",
    )  # fmt: skip
    crawl.set_defaults(func=cmd_crawl)

    demo = commands.add_parser("demo", help="serve the demo market and crawl it on two days")
    demo.add_argument("--days", type=int, nargs="+", default=[1, 2])
    demo.add_argument(
        "--tor", action="store_true",
        help="crawl the market as an onion service on a private Tor network on loopback",
    )  # fmt: skip
    demo.set_defaults(func=cmd_demo)

    export = commands.add_parser(
        "export", help="a run's listings, vendors and feedback; or tables for publication"
    )
    export.add_argument("source")
    export.add_argument("--run", default=None, help="run id or number (default: latest)")
    export.add_argument("--runs", default=None, metavar="A..B", help="a panel of runs")
    export.add_argument("--format", choices=["jsonl", "csv", "parquet"], default="jsonl")
    export.add_argument(
        "--output", default=None, metavar="DIR",
        help="write one file per table and a manifest here (else: the JSONL stream on stdout)",
    )  # fmt: skip
    export.add_argument(
        "--pseudonymise", default=None, metavar="KEY",
        help="replace vendor and buyer handles with keyed HMACs (stable for the same key)",
    )  # fmt: skip
    export.add_argument("--no-text", action="store_true", help="leave out free text")
    export.add_argument("--warc", action="store_true", help="also the raw pages as WARC files")
    export.add_argument("--category", default=None, help="only listings on this category path")
    export.add_argument("--vendor", default=None, help="only this vendor's listings (vendor id)")
    export.add_argument("--ships-from", default=None, metavar="CC", help="only listings from CC")
    add_parser_option(export)
    export.set_defaults(func=cmd_export)

    runs = commands.add_parser("runs", help="a source's runs with status, counts and reasons")
    runs.add_argument("source")
    runs.set_defaults(func=cmd_runs)

    history = commands.add_parser("history", help="every version of one listing or vendor")
    history.add_argument("source")
    history.add_argument("key", help="listing id (or vendor id with --kind vendor)")
    history.add_argument("--kind", choices=["listing", "vendor"], default="listing")
    history.add_argument(
        "--format", choices=["table", "jsonl", "json", "csv"], default=None,
        help="table on a terminal, else jsonl (one version per line, with USD per run)",
    )  # fmt: skip
    add_parser_option(history)
    history.set_defaults(func=cmd_history)

    reparse = commands.add_parser(
        "reparse", help="re-read runs' archived pages with today's parser; list or store changes"
    )
    reparse.add_argument("source")
    which = reparse.add_mutually_exclusive_group()
    which.add_argument("--run", default=None, help="run id or number (default: latest)")
    which.add_argument("--runs", default=None, metavar="A..B", help="a range of runs")
    which.add_argument("--all", action="store_true", help="every closed run of the source")
    reparse.add_argument(
        "--write", action="store_true",
        help="store what reads differently as versions under today's parser version",
    )  # fmt: skip
    reparse.set_defaults(func=cmd_reparse)

    normalisers = commands.add_parser(
        "normalisers", help="what the normalisers understand: currencies, units, countries, dates"
    )
    normalisers.set_defaults(func=cmd_normalisers)

    db = commands.add_parser("db", help="the embedded database, shared by every command")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    for name, func, text in (
        ("start", cmd_db_start, "start it now (commands otherwise start it when needed)"),
        ("stop", cmd_db_stop, "stop it now, even while commands use it"),
        ("status", cmd_db_status, "is it running, where, for whom; exit 1 when it is not"),
    ):
        db_commands.add_parser(name, help=text).set_defaults(func=func)

    spool = commands.add_parser("spool", help="pages kept locally while the database was away")
    spool_commands = spool.add_subparsers(dest="spool_command", required=True)
    for name, func, text in (
        ("status", cmd_spool_status, "what each spool holds and whether a crawl writes it"),
        ("flush", cmd_spool_flush, "write the spool(s) into the archive and close the run(s)"),
    ):
        spool_command = spool_commands.add_parser(name, help=text)
        spool_command.add_argument("--run", default=None, help="only this run's spool")
        spool_command.set_defaults(func=func)

    add_query_commands(commands)
    add_rates_commands(commands)

    vendors = commands.add_parser("vendors", help="one vendor's accounts across sources")
    vendor_commands = vendors.add_subparsers(dest="vendors_command", required=True)
    vendor_commands.add_parser(
        "link", help="recompute the links between accounts (PGP key, handle and bio)"
    ).set_defaults(func=cmd_vendors_link)
    show = vendor_commands.add_parser("show", help="an account's identity and its listings")
    show.add_argument("source")
    show.add_argument("key", help="the vendor id on that source")
    show.add_argument("--weak", action="store_true", help="also trust weak links")
    show.add_argument("--format", choices=["text", "json"], default="text")
    show.set_defaults(func=cmd_vendors_show)

    tor = commands.add_parser("tor", help="Tor as darkarchive sees it (config/tor.yaml)")
    tor_commands = tor.add_subparsers(dest="tor_command", required=True)
    check = tor_commands.add_parser(
        "check", help="bootstrap state, a test fetch per source, circuits per source"
    )
    check.add_argument("source", nargs="*", help="Tor sources to test-fetch (first mirror)")
    check.add_argument("--url", default="", help="a further URL to fetch through Tor")
    check.add_argument("--timeout", type=float, default=60.0)
    check.set_defaults(func=cmd_tor_check)

    session = commands.add_parser("session", help="a source's login session, set by a person")
    session_commands = session.add_subparsers(dest="session_command", required=True)
    session_set = session_commands.add_parser(
        "set", help="store session cookie(s) (values read from stdin) and the user agent"
    )
    session_set.add_argument("source")
    session_set.add_argument(
        "--cookie", action="append", default=[], metavar="NAME",
        help="cookie name (repeatable; default: the source's session cookie(s), else those stored)",
    )  # fmt: skip
    session_set.add_argument("--user-agent", default=None, help="the browser's user agent")
    session_set.add_argument("--expires", default=None, help="when the market said it expires")
    session_set.set_defaults(func=cmd_session_set)
    session_check = session_commands.add_parser("check", help="does the session still work?")
    session_check.add_argument("source")
    session_check.add_argument("--mirror", default="", help="base URL instead of the first mirror")
    session_check.set_defaults(func=cmd_session_check)
    session_show = session_commands.add_parser("show", help="what is stored (never the values)")
    session_show.add_argument("source")
    session_show.set_defaults(func=cmd_session_show)

    fixtures = commands.add_parser("fixtures", help="the synthetic fixture markets")
    fixture_commands = fixtures.add_subparsers(dest="fixtures_command", required=True)
    serve = fixture_commands.add_parser("serve", help="serve a fixture market over HTTP")
    serve.add_argument("--market", default="demo")
    serve.add_argument("--day", type=int, default=1)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8800)
    serve.add_argument(
        "--onion", action="store_true",
        help="serve it as an onion service on a private Tor network on loopback",
    )  # fmt: skip
    serve.add_argument(
        "--noise", action="store_true",
        help="a fresh token, clock and visitor count on every page, as real markets have",
    )  # fmt: skip
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
    save.add_argument("--root", default=None, help="where cases live (default fixtures/pages)")
    save.set_defaults(func=cmd_fixtures_save_page)
    replay_cases = fixture_commands.add_parser(
        "test", help="replay a source's saved cases and show what reads differently"
    )
    replay_cases.add_argument("source", help="source id (on the sources search path) or YAML path")
    replay_cases.add_argument(
        "--root", default=None, help="where cases live: <root>/<source>/<kind>/<case>/ "
        "(default fixtures/pages)",
    )  # fmt: skip
    replay_cases.set_defaults(func=cmd_fixtures_test)
    add_schedule_commands(commands)
    return parser


def cmd_normalisers(args: argparse.Namespace) -> int:
    """Print NORMALISERS.md: the normalisers' tables, for people writing a source file."""
    from pipelines.normalise.vocabulary import vocabulary_markdown

    sys.stdout.write(vocabulary_markdown())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Only what the command needs is imported: `darkarchive runs` must not wait for Scrapy.
    from crawler.config_errors import ConfigFileError
    from pipelines.store.connect import ArchiveUnavailableError
    from pipelines.store.embedded import EmbeddedMongoError

    try:
        return int(args.func(args))
    except ConfigFileError as exc:  # a source, schedule or alerts file
        print(f"darkarchive: bad {exc.what}: {exc}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    except (ArchiveUnavailableError, EmbeddedMongoError) as exc:
        print(f"darkarchive: {exc}; nothing was crawled or changed", file=sys.stderr)
        return exit_codes.DATABASE_UNREACHABLE
    except BrokenPipeError:  # `darkarchive export … | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
