"""The project's rate table: daily rates per currency pair with their provenance.

Markets that show no rate (fiat-only, crypto-only) still need a USD value. A team imports
daily rates (`darkarchive rates import FILE`, a CSV of `date,base,quote,rate,source`) into
`rate_table`, one document per (base, quote, day). When a run closes, the rates of its
day are copied onto the run (`rates["table:BASE/QUOTE"]`), so the run's USD values never
move when the table grows later (past runs are immutable); they are used only where the
market's own rates, read either way and crossed, and a listing's hint give none.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, InsertOne

from pipelines.normalise.currencies import currency_code
from pipelines.normalise.prices import RATE_CAP
from pipelines.normalise.rates import TABLE_PREFIX
from pipelines.store.codec import from_bson, to_bson
from pipelines.store.schema import RUNS
from pipelines.store.writes import bulk_ignoring_duplicates

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from pymongo.database import Database

logger = logging.getLogger(__name__)

RATE_TABLE = "rate_table"
HEADER = ("date", "base", "quote", "rate", "source")
#: a run takes its day's rate, else the latest earlier one at most this many days old
#: (weekends and holidays have no reference rate)
MAX_AGE_DAYS = 7
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")


class RateTableError(ValueError):
    """A rate file that cannot be imported; each problem names the file and its line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class TableRow:
    """One line of a rate file: ``rate`` units of ``quote`` per one ``base`` on ``day``."""

    day: str
    base: str
    quote: str
    rate: Decimal
    source: str
    line: int

    @property
    def id(self) -> str:
        return f"{self.base}/{self.quote}:{self.day}"


def _code(text: str) -> str | None:
    code = currency_code(text)
    return code if code is not None and code == text.strip().upper() else None


def _row(values: list[str], line: int) -> TableRow | str:
    """The row, or what is wrong with it."""
    if len(values) != len(HEADER):
        return f"expected {len(HEADER)} columns ({','.join(HEADER)}), got {len(values)}"
    day, base, quote, rate, source = (v.strip() for v in values)
    if not _DAY.match(day):
        return f"date {day!r} is not YYYY-MM-DD"
    try:
        date.fromisoformat(day)
    except ValueError:
        return f"date {day!r} does not exist"
    codes = _code(base), _code(quote)
    for text, code in zip((base, quote), codes, strict=True):
        if code is None:
            return f"currency {text!r} is not an ISO 4217 code or a known crypto ticker"
    if codes[0] == codes[1]:
        return f"base and quote are both {codes[0]}"
    if not _NUMBER.match(rate):
        return f"rate {rate!r} is not a plain decimal number (digits, one '.')"
    try:
        value = Decimal(rate)
    except InvalidOperation:
        return f"rate {rate!r} is not a number"
    if value <= 0 or value > RATE_CAP:
        return f"rate {rate} is not above 0 and at most {RATE_CAP:,f}"
    if not source:
        return "source is empty: say where the rate came from and when it was fetched"
    return TableRow(day, str(codes[0]), str(codes[1]), value, source, line)


def read_rate_file(path: Path) -> list[TableRow]:
    """Every row of a rate file; RateTableError names each bad line (nothing is half read).

    Lines starting with `#` and blank lines are skipped; the first other line is the header.
    """
    problems: list[str] = []
    rows: list[TableRow] = []
    seen: dict[str, TableRow] = {}
    header_seen = False
    with path.open(newline="", encoding="utf-8") as handle:
        for line, values in enumerate(csv.reader(handle), start=1):
            if not values or not "".join(values).strip() or values[0].lstrip().startswith("#"):
                continue
            if not header_seen:
                header_seen = True
                if tuple(v.strip().lower() for v in values) != HEADER:
                    problems.append(
                        f"{path}:{line}: the header must be {','.join(HEADER)} "
                        f"(got {','.join(values)})"
                    )
                    break
                continue
            row = _row(values, line)
            if isinstance(row, str):
                problems.append(f"{path}:{line}: {row}")
                continue
            twin = seen.get(row.id)
            if twin is not None and twin.rate != row.rate:
                problems.append(
                    f"{path}:{line}: {row.base}/{row.quote} on {row.day} is {row.rate} here "
                    f"but {twin.rate} on line {twin.line}"
                )
                continue
            if twin is None:
                seen[row.id] = row
                rows.append(row)
    if not header_seen and not problems:
        problems.append(f"{path}: no header ({','.join(HEADER)}) and no rows")
    if problems:
        raise RateTableError(problems)
    return rows


def ensure_index(db: Database) -> None:
    """Rows of a day range (a run's snapshot) are found by date."""
    db[RATE_TABLE].create_index([("date", ASCENDING)])


def import_rows(db: Database, rows: Iterable[TableRow], *, file: str) -> tuple[int, int]:
    """Store new rows; return (new, already stored with the same rate).

    A row already in the table with another rate is refused with its line, and then
    nothing of the file is stored: a rate in the table is never rewritten, because runs
    closed since have copied it (fix a wrong row by removing it from `rate_table` by hand,
    and say so in the new row's source).
    """
    ensure_index(db)
    rows = list(rows)
    stored = {
        doc["_id"]: from_bson(doc)
        for start in range(0, len(rows), 500)
        for doc in db[RATE_TABLE].find({"_id": {"$in": [r.id for r in rows[start : start + 500]]}})
    }
    problems = [
        f"{file}:{row.line}: {row.base}/{row.quote} on {row.day} is {stored[row.id]['rate']} in "
        f"the rate table already ({stored[row.id]['source']}; imported from "
        f"{stored[row.id].get('file')} line {stored[row.id].get('line')}), not {row.rate}"
        for row in rows
        if row.id in stored and stored[row.id]["rate"] != row.rate
    ]
    if problems:
        raise RateTableError(problems)
    new = [row for row in rows if row.id not in stored]
    now = datetime.now(UTC)
    ops = [
        InsertOne(
            to_bson(
                {
                    "_id": row.id,
                    "base": row.base,
                    "quote": row.quote,
                    "date": row.day,
                    "rate": row.rate,
                    "source": row.source,
                    "file": file,
                    "line": row.line,
                    "imported_at": now,
                }
            )
        )
        for row in new
    ]
    _, raced = bulk_ignoring_duplicates(db[RATE_TABLE], ops)  # a concurrent import of the same
    return len(new) - len(raced), len(rows) - len(new) + len(raced)


def rates_of_day(db: Database, day: date) -> dict[str, dict[str, Any]]:
    """Per pair, the table's rate of `day`, else its latest within `MAX_AGE_DAYS` before,
    as run `rates` entries keyed `table:BASE/QUOTE`."""
    low = (day - timedelta(days=MAX_AGE_DAYS)).isoformat()
    found: dict[str, dict[str, Any]] = {}
    query = {"date": {"$gte": low, "$lte": day.isoformat()}}
    for doc in db[RATE_TABLE].find(query).sort([("date", ASCENDING), ("_id", ASCENDING)]):
        doc = from_bson(doc)
        found[f"{TABLE_PREFIX}{doc['base']}/{doc['quote']}"] = {  # later days overwrite
            "value": doc["rate"],
            "base": doc["base"],
            "quote": doc["quote"],
            "date": doc["date"],
            "source": "table",
            "provenance": f"rate table {doc['date']}: {doc['source']}",
        }
    return found


def copy_onto_run(db: Database, run_id: str) -> int:
    """Copy the rates of the run's day onto the run (idempotent); return how many."""
    doc = db[RUNS].find_one({"_id": run_id}, {"started_at": 1})
    started = doc.get("started_at") if doc else None
    if not isinstance(started, datetime):
        return 0
    day = (started if started.tzinfo else started.replace(tzinfo=UTC)).astimezone(UTC).date()
    rates = rates_of_day(db, day)
    if rates:
        db[RUNS].update_one(
            {"_id": run_id}, {"$set": {f"rates.{key}": to_bson(v) for key, v in rates.items()}}
        )
    return len(rates)
