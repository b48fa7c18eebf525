"""`darkarchive export`: the stable JSONL stream, or tables and a manifest for publication."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from crawler import exit_codes
from crawler.commands.shared import archive_connection

if TYPE_CHECKING:
    import argparse

    from pymongo.database import Database

_RANGE = re.compile(r"^\s*(\S+?)\s*\.\.\s*(\S+)\s*$")


def _seq(db: Database, source: str, run: str) -> int:
    """A run named by id (`demo:000003`) or by its sequence number (`3`)."""
    from pipelines.store.queries import get_run

    if run.isdigit():
        return int(run)
    doc = get_run(db, run)
    if doc is None or doc["source"] != source:
        raise KeyError(f"no run {run!r} of source {source!r}")
    return int(doc["seq"])


def _span(db: Database, args: argparse.Namespace) -> tuple[int, int]:
    from pipelines.store.queries import latest_run

    if args.runs:
        match = _RANGE.match(args.runs)
        if match is None:
            raise KeyError(f"--runs {args.runs!r}: expected FIRST..LAST (run ids or numbers)")
        return _seq(db, args.source, match.group(1)), _seq(db, args.source, match.group(2))
    if args.run:
        seq = _seq(db, args.source, args.run)
        return seq, seq
    latest = latest_run(db, args.source)
    if latest is None:
        raise KeyError(f"no complete or partial run of source {args.source!r}")
    return latest["seq"], latest["seq"]


def closed_runs(db: Database, args: argparse.Namespace) -> list[str]:
    """The closed runs `--run`, `--runs A..B` or `--all` name (default: the latest), in order."""
    from pipelines.store.queries import runs

    every = [r for r in runs(db, args.source) if r["status"] != "running"]
    if getattr(args, "all", False):
        first, last = 1, max((r["seq"] for r in every), default=0)
    else:
        first, last = _span(db, args)
    chosen = [r["_id"] for r in every if first <= r["seq"] <= last]
    if not chosen:
        raise KeyError(f"no closed run of source {args.source!r} between {first} and {last}")
    return chosen


def cmd_export(args: argparse.Namespace) -> int:
    from pipelines.exports import ExportRequest, export_dataset
    from pipelines.exports.filters import ExportFilter
    from pipelines.store.export import export_run, write_jsonl
    from pipelines.store.runs import run_id_for

    rule = ExportFilter(category=args.category, vendor=args.vendor, ships_from=args.ships_from)
    publication = args.output or args.runs or args.pseudonymise or args.no_text or args.warc or rule
    if args.format != "jsonl" and not args.output:
        print("darkarchive: --format csv|parquet writes files: give --output DIR", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    with archive_connection() as connection:
        try:
            if not publication:  # the stable stream of one run, on stdout
                run_id = args.run
                if run_id is not None and run_id.isdigit():  # a number, as --runs takes
                    run_id = run_id_for(args.source, int(run_id))
                stream = export_run(connection.db, args.source, run_id, parser=args.parser)
                write_jsonl(stream, sys.stdout)
                return 0
            if not args.output:
                print("darkarchive: these options write files: give --output DIR", file=sys.stderr)
                return exit_codes.CONFIG_ERROR
            first, last = _span(connection.db, args)
            request = ExportRequest(
                source=args.source,
                first_seq=first,
                last_seq=last,
                fmt=args.format,
                pseudonymise_key=args.pseudonymise,
                no_text=args.no_text,
                warc=args.warc,
                parser=args.parser,
                rule=rule,
            )
            manifest = export_dataset(connection.db, request, Path(args.output))
        except KeyError as exc:
            print(f"darkarchive: nothing to export: {exc.args[0]}", file=sys.stderr)
            return 1
    for name, entry in sorted(manifest["files"].items()):
        count = entry.get("rows", entry.get("records"))
        print(f"{Path(args.output) / name}: {count} {'records' if 'records' in entry else 'rows'}")
    print(f"{Path(args.output) / 'manifest.json'}: runs, completeness, checksums, the query")
    return 0
