"""The normalisers a page calls most, memoised: a run's pages repeat the same strings.

The rate banner is on every page, "3 days ago" under many feedback entries, the same
prices and ratings across a category; and every normaliser here is a pure function of its
arguments that returns a frozen value (`Price`, `Rate`, `Rating`, `Quantity`,
`DateInterval`), so a cached answer is the answer. A text that raises is not cached: it
raises again, with the same message. Each cache is bounded (`MAXSIZE` entries).
"""

from __future__ import annotations

import functools
import logging
from decimal import Decimal
from typing import TYPE_CHECKING

from pipelines.normalise.dates import DateInterval, parse_date
from pipelines.normalise.prices import Price, Rate, parse_price, parse_rate
from pipelines.normalise.quantities import Quantity, parse_quantity
from pipelines.normalise.ratings import Rating, parse_count, parse_rating

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

logger = logging.getLogger(__name__)

MAXSIZE = 8192


@functools.lru_cache(maxsize=MAXSIZE)
def rate(text: str) -> Rate:
    """`parse_rate(text)`."""
    return parse_rate(text)


@functools.lru_cache(maxsize=MAXSIZE)
def price(text: str, default_currency: str | None, decimal_separator: str | None) -> Price:
    """`parse_price(text, default_currency=…, decimal_separator=…)`."""
    return parse_price(text, default_currency=default_currency, decimal_separator=decimal_separator)


@functools.lru_cache(maxsize=MAXSIZE)
def quantity(text: str, decimal_separator: str | None) -> Quantity:
    """`parse_quantity(text, decimal_separator=…)`."""
    return parse_quantity(text, decimal_separator=decimal_separator)


@functools.lru_cache(maxsize=MAXSIZE)
def count(text: str) -> int:
    """`parse_count(text)`."""
    return parse_count(text)


@functools.lru_cache(maxsize=MAXSIZE)
def _rating(text: str, scale: str | None) -> Rating:
    return parse_rating(text, scale=None if scale is None else Decimal(scale))


def rating(text: str, scale: Decimal | None) -> Rating:
    """`parse_rating(text, scale=scale)`, keyed by the scale's text: Decimal("5") and
    Decimal("5.0") are equal keys to a cache, but a rating keeps the scale as written."""
    return _rating(text, None if scale is None else str(scale))


@functools.lru_cache(maxsize=MAXSIZE)
def date(
    text: str,
    base: datetime,
    languages: tuple[str, ...],
    date_order: str | None,
    timezone: tzinfo,
) -> DateInterval:
    """`parse_date(text, base=…, …)`. Two bases that are the same instant are one key;
    `parse_date` reads `base` in UTC first, so they are one answer too."""
    return parse_date(
        text, base=base, languages=languages, date_order=date_order, timezone=timezone
    )
