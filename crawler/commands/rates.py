"""`darkarchive rates import FILE`: the project's daily rate table, with its provenance."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from crawler import exit_codes
from crawler.commands.shared import archive_connection

if TYPE_CHECKING:
    import argparse


def add_rates_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rates = commands.add_parser(
        "rates", help="the project's rate table, for markets that show no exchange rate"
    )
    rate_commands = rates.add_subparsers(dest="rates_command", required=True)
    load = rate_commands.add_parser(
        "import", help="add a CSV of date,base,quote,rate,source rows (see the README)"
    )
    load.add_argument("file", help="a CSV file, e.g. config/rates/example.csv")
    load.set_defaults(func=cmd_rates_import)


def cmd_rates_import(args: argparse.Namespace) -> int:
    """Check the whole file first; store nothing if any line is wrong or conflicts."""
    from pipelines.store.rate_table import RateTableError, import_rows, read_rate_file

    path = Path(args.file)
    if not path.is_file():
        print(f"darkarchive: no rate file {path}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    try:
        rows = read_rate_file(path)
        with archive_connection() as connection:
            new, known = import_rows(connection.db, rows, file=str(path))
    except RateTableError as exc:
        for problem in exc.problems:
            print(f"darkarchive: {problem}", file=sys.stderr)
        print(f"darkarchive: nothing imported from {path}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    print(f"{path}: {new} rate(s) imported, {known} already in the table with the same rate")
    return 0
