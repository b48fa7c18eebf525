"""Normalisers: raw market text to typed values, each keeping its raw text."""

from __future__ import annotations

from pipelines.normalise.countries import parse_countries, parse_country
from pipelines.normalise.dates import DateInterval, parse_date
from pipelines.normalise.errors import (
    CountryError,
    DateError,
    FlagError,
    NormaliseError,
    PgpError,
    PriceError,
    QuantityError,
    RatingError,
)
from pipelines.normalise.flags import parse_flag
from pipelines.normalise.pgp import pgp_fingerprint
from pipelines.normalise.prices import Price, Rate, UsdValue, parse_price, parse_rate, to_usd
from pipelines.normalise.quantities import Quantity, parse_quantity, price_per_unit
from pipelines.normalise.ratings import Rating, parse_count, parse_rating
from pipelines.normalise.text import clean_text, html_to_text

__all__ = [
    "CountryError",
    "DateError",
    "DateInterval",
    "FlagError",
    "NormaliseError",
    "PgpError",
    "Price",
    "PriceError",
    "Quantity",
    "QuantityError",
    "Rate",
    "Rating",
    "RatingError",
    "UsdValue",
    "clean_text",
    "html_to_text",
    "parse_count",
    "parse_countries",
    "parse_country",
    "parse_date",
    "parse_flag",
    "parse_price",
    "parse_quantity",
    "parse_rate",
    "parse_rating",
    "pgp_fingerprint",
    "price_per_unit",
    "to_usd",
]
