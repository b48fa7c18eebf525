"""Reading the archive: `export`, `runs`, `history`, `reparse`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from crawler.commands.shared import archive_connection

if TYPE_CHECKING:
    import argparse


def cmd_runs(args: argparse.Namespace) -> int:
    """A source's runs, newest last: tells a failed crawl from a market that emptied."""
    from pipelines.store.leases import reap_dead_holder
    from pipelines.store.queries import runs

    with archive_connection() as connection:
        # A run whose crawler died shows as `interrupted`, not `running` for ever.
        reap_dead_holder(connection.db, args.source)
        history = runs(connection.db, args.source)
        if not history:
            print(f"darkarchive: no runs of source {args.source!r}", file=sys.stderr)
            return 1
        for run in history:
            counts = run.get("counts", {})
            listings = counts.get("listing", {})
            started = run.get("started_at")
            print(
                f"{run['_id']}  {started:%Y-%m-%d %H:%M}  {run['status']:<11}  "
                f"pages {counts.get('pages', 0):>6}  listings {listings.get('observed', 0):>6} "
                f"(+{listings.get('new', 0)} ~{listings.get('changed', 0)} "
                f"-{listings.get('delisted', 0)})"
            )
            for reason in run.get("reasons", []):
                print(f"    why: {reason}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Every version of one listing or vendor, with the runs and dates it was valid in;
    for a listing also its price and USD value in every run that observed it."""
    from crawler.commands.query import HISTORY_COLUMNS, SERIES_COLUMNS, emit
    from pipelines.query import price_series
    from pipelines.store.export import jsonable, write_jsonl
    from pipelines.store.queries import entity_history

    with archive_connection() as connection:
        if args.kind == "listing":
            result = price_series(connection.db, args.source, args.key, parser=args.parser)
        else:
            history = entity_history(connection.db, args.source, args.kind, args.key)
            result = {"source": args.source, "key": args.key, "versions": history, "series": []}
    if not result["versions"]:
        missing = f"no {args.kind} {args.key!r} in source {args.source!r}"
        print(f"darkarchive: {missing}", file=sys.stderr)
        return 1
    fmt = args.format or ("table" if sys.stdout.isatty() else "jsonl")
    if fmt == "jsonl":  # the original output, each version now with its runs' USD values
        for version in result["versions"] if args.kind == "listing" else ():
            version["runs"] = [p for p in result["series"] if p["version"] == version["version"]]
        write_jsonl((jsonable(v) for v in result["versions"]), sys.stdout)
        return 0
    if args.kind == "listing":
        title = f"{args.source} listing {args.key}: {len(result['versions'])} versions, USD per run"
        emit(fmt, {"kind": args.kind, **result}, result["series"], SERIES_COLUMNS, title)
    else:
        title = f"{args.source} vendor {args.key}: {len(result['versions'])} versions"
        emit(fmt, {"kind": args.kind, **result}, result["versions"], HISTORY_COLUMNS, title)
    return 0


def cmd_reparse(args: argparse.Namespace) -> int:
    """Re-read runs' archived pages with today's parser: list what reads differently and,
    with `--write`, store it under today's parser version beside the crawl's versions."""
    from crawler.commands.export import closed_runs
    from crawler.reparse import reparse_run
    from crawler.sources.loader import load_source
    from pipelines.store.export import write_jsonl

    source = load_source(args.source)
    with archive_connection() as connection:
        try:
            run_ids = closed_runs(connection.db, args)
        except KeyError as exc:
            print(f"darkarchive: nothing to reparse: {exc.args[0]}", file=sys.stderr)
            return 1
        for run_id in run_ids:
            report = reparse_run(connection.db, source, run_id, write=args.write)
            write_jsonl(({"run": run_id, **d} for d in report.differences), sys.stdout)
            stored = ""
            if report.written is not None:
                stored = (
                    f"; stored under parser {report.parser}: {report.written['inserted']} new, "
                    f"{report.written['extended']} extended, {report.written['replayed']} "
                    "already there"
                )
            elif args.write:
                stored = f"; nothing stored: {run_id} was crawled with parser {report.parser}"
            print(
                f"reparsed {report.pages} archived pages of {run_id}: {report.same} entities read "
                f"the same, {len(report.differences)} differ, {len(report.problems)} problems"
                f"{stored}",
                file=sys.stderr,
            )
    return 0
