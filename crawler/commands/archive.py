"""Reading the archive: `export`, `runs`, `history`, `reparse`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from crawler.commands.shared import archive_connection

if TYPE_CHECKING:
    import argparse


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
