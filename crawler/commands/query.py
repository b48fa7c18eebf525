"""Asking the archive: `asof`, `changes`, `search`, `sales`, `reindex` (pipelines/query)."""

from __future__ import annotations

import csv
import itertools
import json
import logging
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crawler.commands.shared import archive_connection

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator, Mapping, Sequence

logger = logging.getLogger(__name__)

FORMATS = ("table", "json", "csv")
Column = tuple[str, "Callable[[Mapping[str, Any]], Any]"]


def add_query_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The query subcommands, wired into `darkarchive` (crawler/cli.py)."""
    changes = commands.add_parser("changes", help="what changed between two runs of a source")
    changes.add_argument("source")
    changes.add_argument("run_a", help="the earlier run (id or seq)")
    changes.add_argument("run_b", help="the later run (id or seq)")
    changes.add_argument("--kind", choices=["listing", "vendor"], default="listing")
    add_parser_option(changes)
    _format(changes)
    changes.set_defaults(func=cmd_changes)

    asof = commands.add_parser("asof", help="a source's listings (or vendors) as one run saw them")
    asof.add_argument("source")
    when = asof.add_mutually_exclusive_group(required=True)
    when.add_argument("--run", help="run id or seq")
    when.add_argument("--at", type=parse_time, help="the last run started at or before (UTC)")
    asof.add_argument("--kind", choices=["listing", "vendor"], default="listing")
    add_parser_option(asof)
    _format(asof)
    asof.set_defaults(func=cmd_asof)

    search = commands.add_parser(
        "search", help="listings by words, category, vendor, shipping and USD price"
    )
    search.add_argument("words", nargs="*", help="every word must occur (title, description, …)")
    search.add_argument("--source", default=None, help="one source (default: every source)")
    search.add_argument("--category", default=None, help="a category name on the listing's path")
    search.add_argument("--vendor", default=None, help="vendor id")
    search.add_argument("--ships-from", default=None, metavar="CC")
    search.add_argument("--ships-to", default=None, metavar="CC", help="worldwide counts too")
    search.add_argument("--min-usd", type=Decimal, default=None, metavar="X")
    search.add_argument("--max-usd", type=Decimal, default=None, metavar="Y")
    search.add_argument("--max-usd-per-unit", type=Decimal, default=None, metavar="Z")
    search.add_argument("--run", default=None, help="as of this run (default: listed now)")
    _format(search)
    search.set_defaults(func=cmd_search)

    sales = commands.add_parser("sales", help="estimated sales from feedback (Soska & Christin)")
    sales.add_argument("source")
    sales.add_argument("--by", choices=["vendor", "listing"], default="vendor")
    sales.add_argument("--since", type=parse_time, default=None, help="feedback from (UTC)")
    sales.add_argument("--until", type=parse_time, default=None, help="feedback before (UTC)")
    add_parser_option(sales)
    _format(sales)
    sales.set_defaults(func=cmd_sales)

    reindex = commands.add_parser(
        "reindex", help="add search terms to versions archived before search existed"
    )
    reindex.add_argument("source")
    reindex.set_defaults(func=cmd_reindex)


def add_parser_option(parser: argparse.ArgumentParser) -> None:
    """`--parser`: which reading of reparsed runs answers (default: each run's newest)."""
    parser.add_argument(
        "--parser", default=None, metavar="VERSION",
        help="answer with this parser version's reading ('crawl': the crawl's own); "
        "default: the newest reparse of each run",
    )  # fmt: skip


def _format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=FORMATS, default="table",
        help="table (default), json (one document) or csv (one row per line of the table)",
    )  # fmt: skip


def parse_time(text: str) -> datetime:
    """`2026-03-02` or `2026-03-02T12:00[:00][Z|+hh:mm]`; without a zone it is UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def cmd_asof(args: argparse.Namespace) -> int:
    from pipelines.query import QueryError, as_of_stream

    with archive_connection() as connection:
        try:
            run, entities = as_of_stream(
                connection.db,
                args.source,
                kind=args.kind,
                run=args.run,
                at=args.at,
                parser=args.parser,
            )
        except QueryError as exc:
            return _refuse(exc)
        columns = LISTING_COLUMNS if args.kind == "listing" else VENDOR_COLUMNS
        title = (
            f"{args.source} {args.kind}s as of {run['run']} ({run['status']}, read by "
            f"{run['parser']})"
        )
        result = {"source": args.source, "kind": args.kind, "run": run}
        emit_streamed(args.format, result, "entities", entities, columns, title)
    return 0


def cmd_changes(args: argparse.Namespace) -> int:
    from pipelines.query import QueryError, changes

    with archive_connection() as connection:
        try:
            result = changes(
                connection.db,
                args.source,
                args.run_a,
                args.run_b,
                kind=args.kind,
                parser=args.parser,
            )
        except QueryError as exc:
            return _refuse(exc)
    rows = [
        {**entry, "change": change}
        for change in ("new", "changed", "delisted", "relisted")
        for entry in result[change]
    ]
    counts = ", ".join(f"{len(result[c])} {c}" for c in ("new", "changed", "delisted", "relisted"))
    title = f"{args.kind}s from {result['from']['run']} to {result['to']['run']}: {counts}"
    emit(args.format, result, rows, CHANGE_COLUMNS, title)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from pipelines.query import QueryError, Search, search

    query = Search(
        text=" ".join(args.words),
        source=args.source,
        category=args.category,
        vendor=args.vendor,
        ships_from=args.ships_from,
        ships_to=args.ships_to,
        min_usd=args.min_usd,
        max_usd=args.max_usd,
        max_usd_per_unit=args.max_usd_per_unit,
        run=args.run,
    )
    with archive_connection() as connection:
        try:
            result = search(connection.db, query)
        except QueryError as exc:
            return _refuse(exc)
    title = f"{result['count']} listings ({result['method']})"
    emit(args.format, result, result["results"], SEARCH_COLUMNS, title)
    return 0


def cmd_sales(args: argparse.Namespace) -> int:
    from pipelines.query import QueryError, sales

    with archive_connection() as connection:
        try:
            result = sales(
                connection.db,
                args.source,
                by=args.by,
                since=args.since,
                until=args.until,
                parser=args.parser,
            )
        except QueryError as exc:
            return _refuse(exc)
    if args.format != "json":  # the method travels with the figures, on stderr beside CSV
        stream = sys.stderr if args.format == "csv" else sys.stdout
        print(f"method: {result['method']}", file=stream)
        for caveat in result["caveats"]:
            print(f"caveat: {caveat}", file=stream)
    totals = result["totals"]
    title = (
        f"{args.source} sales by {args.by}: {totals['feedback']} feedback entries, "
        f"USD {totals['usd']:,.2f} ({totals['unpriced']} unpriced)"
    )
    columns = [(args.by, lambda r: r[args.by]), *SALES_COLUMNS]
    if args.by == "listing":
        columns[1:1] = [("title", lambda r: r.get("title")), ("vendor", lambda r: r.get("vendor"))]
    emit(args.format, result, result["rows"], columns, title)
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from pipelines.query import reindex

    with archive_connection() as connection:
        done = reindex(connection.db, args.source)
    print(", ".join(f"{n} {kind} versions" for kind, n in done.items()) + " given search terms")
    return 0


def _refuse(exc: Exception) -> int:
    print(f"darkarchive: {exc}", file=sys.stderr)
    return 1


def _money(value: Any) -> str:
    if not isinstance(value, dict) or value.get("amount") is None:
        return ""
    unit = f"/{value['unit']}" if value.get("unit") else ""
    return f"{value['amount']} {value.get('currency') or 'USD'}{unit}"


def _usd(value: Any) -> str:
    if not isinstance(value, dict) or value.get("amount") is None:
        return ""
    return f"{value['amount']:.2f}"


LISTING_COLUMNS: list[Column] = [
    ("key", lambda e: e["key"]),
    ("v", lambda e: e["version"]),
    ("title", lambda e: e["content"].get("title")),
    ("vendor", lambda e: e["content"].get("vendor")),
    ("price", lambda e: _money(e["content"].get("price"))),
    ("usd", lambda e: _usd(e["content"].get("usd"))),
]
VENDOR_COLUMNS: list[Column] = [
    ("key", lambda e: e["key"]),
    ("v", lambda e: e["version"]),
    ("name", lambda e: e["content"].get("name")),
    ("rating", lambda e: (e["content"].get("rating") or {}).get("text")),
    ("feedback", lambda e: e["content"].get("feedback_count")),
]
CHANGE_COLUMNS: list[Column] = [
    ("change", lambda e: e["change"]),
    ("key", lambda e: e["key"]),
    ("v", lambda e: e.get("version") or f"{e.get('version_from')}→{e.get('version_to')}"),
    ("title", lambda e: e["content"].get("title") or e["content"].get("name")),
    ("fields", lambda e: " ".join(e.get("fields", []))),
]
SEARCH_COLUMNS: list[Column] = [
    ("source", lambda r: r["source"]),
    ("key", lambda r: r["key"]),
    ("title", lambda r: r["title"]),
    ("vendor", lambda r: r["vendor"]),
    ("price", lambda r: _money(r["price"])),
    ("usd", lambda r: _usd(r["usd"])),
    (
        "usd/unit",
        lambda r: _money({**r["usd_per_unit"], "currency": "USD"} if r["usd_per_unit"] else None),
    ),
]
SERIES_COLUMNS: list[Column] = [
    ("run", lambda p: p["run"]),
    ("status", lambda p: p["status"]),
    ("started", lambda p: f"{p['started_at']:%Y-%m-%d %H:%M}" if p["started_at"] else ""),
    ("v", lambda p: p["version"]),
    ("price", lambda p: _money(p["price"])),
    ("usd", lambda p: _usd(p["usd"])),
    ("rate", lambda p: (p["usd"] or {}).get("rate")),
    ("rate source", lambda p: (p["usd"] or {}).get("rate_source")),
]
HISTORY_COLUMNS: list[Column] = [
    ("v", lambda v: v["version"]),
    ("from run", lambda v: v["valid_from_run"]),
    ("to run", lambda v: v["valid_to_run"]),
    ("ended by", lambda v: v["ended_by"]),
    ("parser changed", lambda v: v["parser_changed"]),
]
SALES_COLUMNS: list[Column] = [
    ("feedback", lambda r: r["feedback"]),
    ("usd", lambda r: f"{r['usd']:.2f}"),
    ("unpriced", lambda r: r["unpriced"]),
    ("first", lambda r: f"{r['first_feedback']:%Y-%m-%d}"),
    ("last", lambda r: f"{r['last_feedback']:%Y-%m-%d}"),
]


def emit(
    fmt: str,
    document: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    title: str,
) -> None:
    """Print a result: the whole document as JSON, its rows as CSV, or a table."""
    from pipelines.store.export import jsonable

    if fmt == "json":
        json.dump(jsonable(document), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return
    cells = [[_cell(get(row)) for _, get in columns] for row in rows]
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([name for name, _ in columns])
        writer.writerows(cells)
        return
    print_table(title, [name for name, _ in columns], cells)


def emit_streamed(
    fmt: str,
    document: Mapping[str, Any],
    field: str,
    rows: Iterator[Mapping[str, Any]],
    columns: Sequence[Column],
    title: str,
) -> None:
    """`emit` for a result too large to hold (a market as of a run): its JSON and CSV are
    written row by row as `rows` yields them; a table, which needs every width, holds them
    (its title gets their count). The JSON is `document` with the rows last, as `field`."""
    from pipelines.store.export import jsonable

    if fmt == "table":
        held = list(rows)
        emit(fmt, {**document, field: held}, held, columns, f"{title}: {len(held)}")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([name for name, _ in columns])
        writer.writerows([_cell(get(row)) for _, get in columns] for row in rows)
    else:
        encoded = (jsonable(row) for row in rows)
        first = next(encoded, None)
        lazy = [] if first is None else _Streamed(itertools.chain([first], encoded))
        json.dump({**jsonable(document), field: lazy}, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")


class _Streamed(list):  # type: ignore[type-arg]
    """Rows for `json.dump`, which takes any list and walks it once: each is encoded as it
    comes, none held. Never empty (an empty result is a plain `[]`). Only with `indent`
    set: json then uses its Python encoder, which iterates; the C one (no indent) reads a
    list's own items and would see none (tests/test_query_output.py holds the output)."""

    def __init__(self, rows: Iterator[Any]) -> None:
        super().__init__()
        self._rows = rows

    def __iter__(self) -> Iterator[Any]:
        return self._rows

    def __bool__(self) -> bool:
        return True


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        from pipelines.store.export import jsonable

        return str(jsonable(value))
    return str(value)


def print_table(title: str, headers: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
    """A rich table on a terminal; plain aligned columns when piped."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in cells:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print(title)
    for row in [list(headers), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
