"""One table to one file, in JSONL, CSV or Parquet, with the columns of `schema.TABLES`.

Each writer is deterministic (same rows, same bytes), so a manifest's checksums identify
the data, not the moment it was written.
"""

from __future__ import annotations

import csv
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pipelines.exports.schema import TABLES
from pipelines.store.export import jsonable

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

logger = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv", "parquet")
DECIMAL_PRECISION, DECIMAL_SCALE = 38, 18  # Parquet decimal128: 20 digits before the point


def write_table(table: str, rows: Iterable[dict[str, Any]], path: Path, fmt: str) -> int:
    """Write `rows` of `table` to `path` in `fmt`; return the number of rows."""
    if fmt == "jsonl":
        return _jsonl(rows, path)
    if fmt == "csv":
        return _csv(table, rows, path)
    if fmt == "parquet":
        return _parquet(table, rows, path)
    raise ValueError(f"unknown export format {fmt!r}; expected one of {FORMATS}")


def _jsonl(rows: Iterable[dict[str, Any]], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(jsonable(row), ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            count += 1
    return count


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime | Decimal):
        return jsonable(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def _csv(table: str, rows: Iterable[dict[str, Any]], path: Path) -> int:
    names = [name for name, _ in TABLES[table]]
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([_csv_value(row.get(name)) for name in names])
            count += 1
    return count


def _parquet(table: str, rows: Iterable[dict[str, Any]], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {
        "string": pa.string(),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "decimal": pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE),
        "timestamp": pa.timestamp("ms", tz="UTC"),
    }
    schema = pa.schema([(name, types[kind]) for name, kind in TABLES[table]])
    columns: dict[str, list[Any]] = {name: [] for name, _ in TABLES[table]}
    count = 0
    for row in rows:
        for name, kind in TABLES[table]:
            columns[name].append(_arrow_value(row.get(name), kind, table, name))
        count += 1
    data = pa.Table.from_pydict(columns, schema=schema)
    pq.write_table(data, path, compression="zstd")
    return count


def _arrow_value(value: Any, kind: str, table: str, name: str) -> Any:
    if value is None:
        return None
    if kind == "decimal":
        try:
            quantized = Decimal(value).quantize(Decimal(1).scaleb(-DECIMAL_SCALE))
        except InvalidOperation:
            quantized = None
        if quantized is None or len(quantized.as_tuple().digits) > DECIMAL_PRECISION:
            logger.warning(
                "%s.%s: %s does not fit decimal128(38, 18); left empty", table, name, value
            )
            return None
        return quantized
    if kind == "timestamp" and isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
