"""Property-based tests of the price, quantity, date and country parsers (hypothesis).

Whatever text a market shows, each parser either returns a value inside its documented range
or raises its own ``NormaliseError`` with the text, which the page records as a problem on
the field: it never raises anything else and never hands on an absurd value silently. The
texts mix fragments met on markets (currency symbols, tickers, grouped and exponent numbers,
minus signs, unit words, "ago" phrases in en/de/fr/ru, country names) with arbitrary text.
Every case these tests found is kept below as an ``@example``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pycountry
import pytest
from bson.decimal128 import Decimal128
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from pipelines.normalise import (
    CountryError,
    DateError,
    PriceError,
    QuantityError,
    RatingError,
    parse_count,
    parse_countries,
    parse_country,
    parse_date,
    parse_price,
    parse_quantity,
    parse_rate,
    parse_rating,
)
from pipelines.normalise.currencies import CRYPTO_CODES, amount_cap
from pipelines.normalise.dates import MAX_AGE, MAX_AHEAD
from pipelines.normalise.numbers import MAX_DIGITS
from pipelines.normalise.prices import RATE_CAP
from pipelines.normalise.quantities import GRAMS_PER, QUANTITY_CAP, UNIT_ALIASES
from pipelines.normalise.ratings import COUNT_CAP, SCALE_CAP

MANY = settings(max_examples=1000, deadline=None)

NUMBERS = st.one_of(
    st.from_regex(r"-?\d{1,4}(?:[.,' \u00a0]\d{3}){0,3}(?:[.,]\d{1,8})?", fullmatch=True),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["1e999", "1E+5", "1.5e3", "NaN", "inf", "-0", "∞", "9" * 50, "0", "½"]),
)
SEPARATORS = st.sampled_from(
    [" ", "", ",", ".", "/", "-", "−", "x", "×", "≈", "~", "=", ":", "(", ")", "\u00a0"]
)
CURRENCIES = st.sampled_from(
    ["$", "€", "£", "¥", "₽", "₿", "Ƀ", "ɱ", "zł", "kr", "Fr.", "US$", "BTC", "btc", "XMR",
     "LTC", "ETH", "USD", "usd", "EUR", "GBP", "bitcoin", "Monero", "bitcoin cash", "XBT"]
)  # fmt: skip
UNITS = st.sampled_from(
    ["g", "mg", "kg", "oz", "lb", "ml", "l", "µg", "pills", "tabs", "Stück", "pièces",
     "Gramm", "grams", "units", "гр", "шт"]
)  # fmt: skip
DATE_PHRASES = st.sampled_from(
    ["ago", "days ago", "3 hours ago", "a week ago", "2 weeks ago", "1 year ago", "yesterday",
     "today", "just now", "last month", "vor 2 Tagen", "vor einer Woche", "gestern", "heute",
     "il y a 3 jours", "il y a une semaine", "hier", "aujourd'hui", "2 дня назад",
     "неделю назад", "вчера", "сегодня", "4. März 2026", "15 Jan 2026", "2026-01-15",
     "15/01/2026", "01/15/2026", "March 2024", "12:30", "Jan", "2099", "1970", "9999"]
)  # fmt: skip
COUNTRIES = st.sampled_from(
    ["Germany", "UK", "USA", "Holland", "Deutschland", "États-Unis", "Netherlands", "EU",
     "Worldwide", "weltweit", "Bosnia and Herzegovina", "Korea, Republic of", "Ships to:",
     "Россия", "China", "us", "de", "XX", "Atlantis", "and", "&", "und", "/", ",", " - "]
)  # fmt: skip


def market_text(*fragments: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Short texts of market fragments, glued or spaced, with arbitrary text mixed in."""
    token = st.one_of(*fragments, SEPARATORS, st.text(max_size=4))
    joiner = st.sampled_from(["", " "])
    return st.one_of(
        st.tuples(joiner, st.lists(token, max_size=6)).map(lambda t: t[0].join(t[1])),
        st.text(max_size=20),
    )


def _storable(value: Decimal) -> bool:
    """MongoDB holds the value (a Decimal128 keeps 34 digits; more would be refused)."""
    return Decimal128(value).to_decimal() == value


@MANY
@given(
    text=market_text(NUMBERS, CURRENCIES),
    default=st.sampled_from([None, "USD", "EUR", "BTC", "XMR"]),
    separator=st.sampled_from([None, ".", ","]),
)
@example(text="1e999 BTC", default=None, separator=None)
@example(text="$1e999", default=None, separator=None)
@example(text="-5 BTC", default=None, separator=None)
@example(text="$" + "9" * 50, default=None, separator=None)
@example(text="0 0.0001000000000000000000000000", default="USD", separator=None)  # 25 digits
def test_a_price_is_in_range_or_a_price_error(
    text: str, default: str | None, separator: str | None
) -> None:
    try:
        price = parse_price(text, default_currency=default, decimal_separator=separator)
    except PriceError as exc:
        assert exc.text == text
        event("refused")
        return
    assert price.text == text
    assert price.currency in CRYPTO_CODES or pycountry.currencies.get(alpha_3=price.currency)
    assert price.amount.is_finite()
    assert 0 <= price.amount <= amount_cap(price.currency)
    assert len(price.amount.as_tuple().digits) <= MAX_DIGITS
    assert _storable(price.amount)


@MANY
@given(text=market_text(NUMBERS, CURRENCIES, st.sampled_from(["1 BTC =", "BTC/USD", "XMR:"])))
@example(text="0.000000000000000001 BTC = $999,999,999")
@example(text="1 BTC = $0")
def test_a_rate_is_positive_and_below_the_cap_or_a_price_error(text: str) -> None:
    try:
        rate = parse_rate(text)
    except PriceError as exc:
        assert exc.text == text
        event("refused")
        return
    assert rate.value.is_finite() and 0 < rate.value <= RATE_CAP
    assert _storable(rate.value)


@MANY
@given(
    number=st.from_regex(r"\d{1,6}(?:\.\d{1,8})?", fullmatch=True),
    currency=st.sampled_from(["BTC", "XMR", "$", "€", "USD "]),
    form=st.sampled_from(["-{n} {c}", "{c}-{n}", "-{c}{n}", "{n}e9 {c}", "{c}{n}E+3"]),
)
def test_a_sign_or_an_exponent_is_never_dropped(number: str, currency: str, form: str) -> None:
    text = form.format(n=number, c=currency)
    with pytest.raises(PriceError):  # "BTC-0" has no currency at all: also not a price
        parse_price(text)


@MANY
@given(
    text=market_text(NUMBERS, UNITS),
    separator=st.sampled_from([None, ".", ","]),
)
@example(text="1e999 g", separator=None)
@example(text="-3 g", separator=None)
@example(text="1" * 50 + " g", separator=None)
@example(text="10000000000000000000000 x 1g", separator=None)
def test_a_quantity_is_in_range_or_a_quantity_error(text: str, separator: str | None) -> None:
    try:
        quantity = parse_quantity(text, decimal_separator=separator)
    except QuantityError as exc:
        assert exc.text == text
        event("refused")
        return
    assert quantity.text == text
    assert quantity.unit in set(UNIT_ALIASES.values())
    assert quantity.amount.is_finite() and quantity.amount >= 0
    assert quantity.count is None or 1 <= quantity.count <= QUANTITY_CAP
    base = quantity.total * (GRAMS_PER.get(quantity.unit) or 1)
    assert base <= QUANTITY_CAP * (1000 if quantity.unit == "l" else 1)
    assert _storable(quantity.amount)


RATING_WORDS = st.sampled_from(
    ["/", "out of", "von", "%", "★", "☆", "½", "stars", "ratings", "k", "M", "(", ")"]
)


@MANY
@given(text=market_text(NUMBERS, RATING_WORDS), scale=st.sampled_from([None, 5, 10, 100]))
@example(text="-4/5", scale=None)
@example(text="999999999999M", scale=None)
def test_a_rating_or_a_count_is_in_range_or_a_rating_error(text: str, scale: int | None) -> None:
    try:
        rating = parse_rating(text, scale=None if scale is None else Decimal(scale))
    except RatingError as exc:
        assert exc.text == text
        event("rating refused")
    else:
        assert 0 <= rating.value <= 1 and 0 <= rating.raw <= rating.scale <= SCALE_CAP
    try:
        count = parse_count(text)
    except RatingError as exc:
        assert exc.text == text
        event("count refused")
    else:
        assert 0 <= count <= COUNT_CAP


LANGUAGES = st.sampled_from([("en",), ("de",), ("fr",), ("ru",), ("en", "de", "fr")])
BASES = st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


@MANY
@given(text=market_text(DATE_PHRASES, NUMBERS), base=BASES, languages=LANGUAGES)
@example(text="3000 years ago", base=datetime(2026, 3, 1, tzinfo=UTC), languages=("en",))
@example(text="-2 days ago", base=datetime(2026, 3, 1, tzinfo=UTC), languages=("en",))
@example(text="1" * 30 + " hours ago", base=datetime(2026, 3, 1, tzinfo=UTC), languages=("en",))
@example(text="01/01/2099", base=datetime(2026, 3, 1, tzinfo=UTC), languages=("en",))
def test_a_date_is_a_half_open_interval_near_the_fetch_or_a_date_error(
    text: str, base: datetime, languages: tuple[str, ...]
) -> None:
    try:
        interval = parse_date(text, base=base, languages=languages)
    except DateError as exc:
        assert exc.text == text
        event("refused")
        return
    assert interval.earliest.utcoffset() == timedelta(0) == interval.latest.utcoffset()
    assert interval.earliest < interval.latest
    assert base - MAX_AGE <= interval.earliest <= base + MAX_AHEAD
    # relative ages are wide ("2 years ago": 1 to 3 years back), absolute dates a year at most
    assert interval.latest <= base + MAX_AHEAD + timedelta(days=366)


ISO_CODES = frozenset(c.alpha_2 for c in pycountry.countries) | {"*", "EU"}


@MANY
@given(text=market_text(COUNTRIES))
def test_a_country_is_an_iso_code_or_a_country_error(text: str) -> None:
    try:
        code = parse_country(text)
    except CountryError as exc:
        assert exc.text == text
        event("country refused")
    else:
        assert code in ISO_CODES
    try:
        codes = parse_countries(text)
    except CountryError as exc:
        assert exc.text == text
        event("list refused")
    else:
        assert codes and set(codes) <= ISO_CODES
        assert len(codes) == len(set(codes))
