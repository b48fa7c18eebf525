"""Conversion of normalised content to and from BSON, and its canonical content hash."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bson.decimal128 import Decimal128

if TYPE_CHECKING:
    from collections.abc import Mapping

logger = logging.getLogger(__name__)


def utc_ms(value: datetime) -> datetime:
    """Return `value` as an aware UTC datetime truncated to milliseconds.

    BSON keeps milliseconds only; truncating before hashing makes a hash computed before
    storage equal to one computed from what the server gives back. Naive values are UTC.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


#: str(Decimal) -> (its Decimal128, the text it reads back as): a run's prices and rates
#: repeat, and both conversions are pure Python (~30 µs); str() keeps sign, digits and
#: exponent, so equal keys are equal values
_STORED_DECIMALS: dict[str, tuple[Decimal128, str]] = {}


def _stored(value: Decimal) -> tuple[Decimal128, str]:
    key = str(value)
    found = _STORED_DECIMALS.get(key)
    if found is None:
        stored = Decimal128(value)  # raises for what BSON cannot hold: never cached
        found = (stored, str(stored.to_decimal()))
        if len(_STORED_DECIMALS) >= 100_000:
            _STORED_DECIMALS.clear()
        _STORED_DECIMALS[key] = found
    return found


def stored_decimal_text(value: Decimal) -> str:
    """`str(Decimal128(value).to_decimal())`: how a Decimal reads once stored (memoised)."""
    return _stored(value)[1]


#: Types every converter here (and jsontext's, reparse's) passes on as they are; checked by
#: exact type first, since most values of a record are these.
SCALARS = frozenset({str, int, float, bool, type(None)})


def to_bson(value: Any) -> Any:
    """Convert Decimals to Decimal128 and datetimes to UTC milliseconds, recursively."""
    if type(value) in SCALARS:  # most values; subclasses take the long way below
        return value
    if isinstance(value, Decimal):
        return _stored(value)[0]
    if isinstance(value, datetime):
        return utc_ms(value)
    if isinstance(value, dict):
        return {str(k): to_bson(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_bson(v) for v in value]
    if hasattr(value, "items"):
        return {str(k): to_bson(v) for k, v in value.items()}
    return value


def from_bson(value: Any) -> Any:
    """Convert Decimal128 back to Decimal, recursively, so callers never see BSON types."""
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, dict):
        return {k: from_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_bson(v) for v in value]
    return value


def _canonical_default(value: Any) -> Any:
    if isinstance(value, Decimal128):
        value = value.to_decimal()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return utc_ms(value).isoformat()
    raise TypeError(f"cannot hash content value of type {type(value).__name__}: {value!r}")


def canonical_json(content: Mapping[str, Any]) -> str:
    """Serialise content deterministically (sorted keys, Decimal as string, ISO datetimes)."""
    return json.dumps(
        content,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_canonical_default,
    )


def content_hash(content: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON: two contents version as one exactly when equal."""
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def sha256_text(*parts: str) -> str:
    """Deterministic identifier from text parts (joined with a separator that is not text)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
