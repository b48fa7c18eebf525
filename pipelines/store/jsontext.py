"""JSON-ready values and JSON lines, fast: an export runs this on every field of every row.

Decimals become strings and datetimes ISO 8601 UTC with `Z`, as every export has written
them. The walk dispatches on the exact type (the common case: plain dicts, lists, strings,
numbers, Decimals) and falls back to `isinstance` only for other types, so subclasses
are read as before; a datetime is formatted once per value (cached).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pipelines.store.codec import SCALARS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import TextIO

logger = logging.getLogger(__name__)


def jsonable(value: Any) -> Any:
    """Decimals as strings, datetimes as ISO 8601 UTC with `Z`, recursively.

    >>> jsonable({"a": [Decimal("1.50"), datetime(2026, 1, 2, tzinfo=UTC)], 3: None})
    {'a': ['1.50', '2026-01-02T00:00:00.000Z'], '3': None}
    """
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind is dict:
        return _dict(value)
    if kind is list or kind is tuple:
        return _list(value)
    if kind is Decimal:
        return str(value)
    return _other(value)


def _dict(value: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            key = str(key)
        kind = type(item)
        if kind in SCALARS:
            out[key] = item
        elif kind is dict:
            out[key] = _dict(item)
        elif kind is Decimal:
            out[key] = str(item)
        elif kind is list or kind is tuple:
            out[key] = _list(item)
        else:
            out[key] = _other(item)
    return out


def _list(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [item if type(item) in SCALARS else jsonable(item) for item in value]


def _other(value: Any) -> Any:
    """Subclasses and the rest, in the order the checks were always made."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@lru_cache(maxsize=4096)
def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC to the millisecond with `Z`; a naive datetime is UTC.

    >>> iso_utc(datetime(2026, 3, 1, 12, 0, 0, 123456))
    '2026-03-01T12:00:00.123Z'
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _default(value: Any) -> Any:
    """What `json.dumps` cannot write itself, as `jsonable` writes it (else refused)."""
    converted = _other(value)
    if converted is value:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return converted


# One encoder for every line: `json.dumps` with a `default` builds a new one per call.
_LINES = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def json_line(record: Mapping[str, Any]) -> str:
    """One compact JSON line, the bytes `json.dumps(jsonable(record), …)` gives, without
    copying the record first (keys are strings, as BSON's are)."""
    return _LINES.encode(record)


def write_jsonl(records: Iterable[Mapping[str, Any]], stream: TextIO) -> int:
    """Write one JSON object per line; return the number of lines."""
    count = 0
    write = stream.write
    for record in records:
        write(json_line(record))
        write("\n")
        count += 1
    return count
