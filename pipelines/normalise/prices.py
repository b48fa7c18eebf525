"""Prices, market exchange-rate banners and USD conversion, crypto first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from price_parser import Price as _ParsedPrice

from pipelines.normalise.currencies import (
    CRYPTO_CODES,
    CRYPTO_PATTERN,
    amount_cap,
    crypto_code,
    currency_code,
)
from pipelines.normalise.errors import PriceError
from pipelines.normalise.numbers import (
    NUMBER_PATTERN,
    amount_problem,
    parse_decimal,
    value_problem,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

_CENT = Decimal("0.01")
# Units of one currency per unit of another: the widest real pair (a rial or dong per
# bitcoin) is ~1e9.
RATE_CAP = Decimal(10) ** 12
_CRYPTO_AMOUNT = re.compile(
    rf"(?P<pre>{CRYPTO_PATTERN})\s*:?\s*(?P<num1>{NUMBER_PATTERN})"
    rf"|(?P<num2>{NUMBER_PATTERN})\s*(?P<post>{CRYPTO_PATTERN})",
    re.IGNORECASE,
)
_CODE_AMOUNT = re.compile(  # ISO codes price-parser misses ("45 usd")
    rf"(?<![A-Za-z])(?P<pre>[A-Za-z]{{3}})\s*:?\s*(?P<num1>{NUMBER_PATTERN})"
    rf"|(?P<num2>{NUMBER_PATTERN})\s*(?P<post>[A-Za-z]{{3}})(?![A-Za-z])"
)
# Lower-case codes trusted as currencies; other lower-case words ("top 10", "all 45") are not.
_LOWER_CODES = frozenset({"usd", "eur", "gbp", "chf", "cad", "aud", "pln", "rub", "sek"})
_NUMBER = re.compile(NUMBER_PATTERN)
# Shipping (and samples) shown as free, in the markets' languages: a price of zero.
FREE_WORDS = frozenset(
    {
        "free", "free shipping", "free delivery", "free of charge",
        "gratis", "kostenlos", "versandkostenfrei", "gratuit", "livraison gratuite", "offert",
        "бесплатно", "бесплатная доставка",
    }
)  # fmt: skip
_PAIR = re.compile(
    rf"^\s*(?P<base>[A-Za-z]{{3,4}})\s*[/-]\s*(?P<quote>[A-Za-z]{{3,4}})\s*[:=]?\s*"
    rf"(?P<num>{NUMBER_PATTERN})\s*$"
)
_EQUATION = re.compile(r"^(?P<left>[^=≈]+?)\s*(?:=|≈|~)\s*(?P<right>.+)$")
_LABELLED = re.compile(rf"^\s*(?P<base>{CRYPTO_PATTERN})\s*[:=]\s*(?P<right>.+)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Price:
    """An amount in one currency (ISO 4217 code or crypto ticker), with the text it came from."""

    amount: Decimal
    currency: str
    text: str


@dataclass(frozen=True, slots=True)
class Rate:
    """``value`` units of ``quote`` buy one ``base`` (``1 BTC = $67,012.50``: BTC, USD)."""

    base: str
    quote: str
    value: Decimal
    text: str


@dataclass(frozen=True, slots=True)
class UsdValue:
    """A price in USD, with the rate used (USD per ``rate_currency``) and where it came from.

    ``path`` is the chain the rate was derived through ("RUB→BTC→USD"; "BTC→USD" for a
    rate shown that way round) and ``provenance`` each step's origin (pipelines/normalise/
    rates.py); both are empty for USD itself.
    """

    amount: Decimal
    rate: Decimal
    rate_currency: str
    source: str
    path: str = ""
    provenance: str = ""


def parse_price(
    text: str, *, default_currency: str | None = None, decimal_separator: str | None = None
) -> Price:
    """Read the first priced amount in a listing string, crypto or fiat.

    price-parser reads fiat well but knows no crypto, and its thousands guess turns
    ``0.045`` into 45, so crypto amounts are read here: a ticker, name or symbol next to a
    number, where a single ``.`` is always decimal. Whichever currency-tagged amount comes
    first in the text wins, so ``0.0045 BTC (≈ $301.50)`` is a BTC price. ``default_currency``
    applies when the text shows none; ``decimal_separator`` forces ``.`` or ``,``.

    An amount that is no plain price raises ``PriceError`` rather than being read as a
    plausible one: a minus sign (``-5 BTC``, ``$-5``), exponent notation (``1e999 BTC``), more
    than 24 digits, or more than the currency's cap (``currencies.amount_cap``: about a
    billion dollars' worth).

    A word for nothing ("Free", "Gratis", "Бесплатно": ``FREE_WORDS``) is a zero amount,
    in ``default_currency`` or else USD, since zero is zero in any currency.

    >>> parse_price("0.00450000 BTC")
    Price(amount=Decimal('0.00450000'), currency='BTC', text='0.00450000 BTC')
    >>> parse_price("1.234,56 €").amount, parse_price("≈ $301.50").currency
    (Decimal('1234.56'), 'USD')
    >>> parse_price("Free shipping")
    Price(amount=Decimal('0'), currency='USD', text='Free shipping')
    """
    if " ".join(text.casefold().replace("!", " ").split()) in FREE_WORDS:
        return Price(Decimal(0), default_currency or "USD", text)
    crypto = _CRYPTO_AMOUNT.search(text)
    fiat = _ParsedPrice.fromstring(text, decimal_separator=decimal_separator)
    fiat_at = text.find(fiat.amount_text) if fiat.amount_text else -1
    if crypto and (fiat.currency is None or fiat_at < 0 or crypto.start() <= fiat_at):
        alias = crypto.group("pre") or crypto.group("post")
        group = "num1" if crypto.group("num1") else "num2"
        return _price(text, crypto.span(group), str(crypto_code(alias)), decimal_separator)
    if fiat.currency is not None:
        code = currency_code(fiat.currency)
        if code is None:
            raise PriceError(text, f"unknown currency {fiat.currency!r}")
        if fiat.amount is None or fiat.amount_text is None:
            raise PriceError(text, "no amount")
        return _checked(text, _fiat_span(text, fiat_at, fiat.amount_text), fiat.amount, code)
    for code_match in _CODE_AMOUNT.finditer(text):
        token = code_match.group("pre") or code_match.group("post")
        code = currency_code(token)
        if code is not None and (token.isupper() or token.lower() in _LOWER_CODES):
            group = "num1" if code_match.group("num1") else "num2"
            return _price(text, code_match.span(group), code, decimal_separator)
    if default_currency is None:
        raise PriceError(text, "no currency")
    number_match = _NUMBER.search(text)
    if number_match is None:
        raise PriceError(text, "no amount")
    if default_currency in CRYPTO_CODES or fiat.amount is None:
        return _price(text, number_match.span(), default_currency, decimal_separator)
    return _checked(
        text, _fiat_span(text, fiat_at, fiat.amount_text), fiat.amount, default_currency
    )


def _fiat_span(text: str, at: int, amount_text: str | None) -> tuple[int, int]:
    """Where price-parser's number sits; the whole text when it cannot be found again."""
    return (at, at + len(amount_text)) if at >= 0 and amount_text else (0, len(text))


def parse_rate(text: str) -> Rate:
    """Read a market's exchange-rate banner into a ``Rate`` (quote units per one base).

    Accepts ``1 BTC = $67,012.50``, ``1 XMR = 162,30 €``, ``BTC/USD 67012.50`` and
    ``XMR: $162.30``. When the left side is not one unit the value is divided out.

    >>> parse_rate("1 BTC = $67,012.50")
    Rate(base='BTC', quote='USD', value=Decimal('67012.50'), text='1 BTC = $67,012.50')
    >>> parse_rate("BTC/USD 67012.50").value
    Decimal('67012.50')
    """
    pair = _PAIR.match(text)
    if pair:
        base, quote = currency_code(pair.group("base")), currency_code(pair.group("quote"))
        if base is None or quote is None:
            raise PriceError(text, "unknown currency in rate pair")
        number = pair.group("num")
        problem = amount_problem(text, *pair.span("num"))
        if problem is not None:
            raise PriceError(text, f"rate: {problem}")
        return _rate(base, quote, _decimal(number, None, text), text)
    labelled = _LABELLED.match(text)
    if labelled:
        right = _side(labelled.group("right"), text)
        return _rate(str(crypto_code(labelled.group("base"))), right.currency, right.amount, text)
    equation = _EQUATION.match(text)
    if equation is None:
        raise PriceError(text, "not a rate (expected '1 BTC = $…' or 'BTC/USD …')")
    left, right = _side(equation.group("left"), text), _side(equation.group("right"), text)
    if left.amount == 0:
        raise PriceError(text, "rate with a zero left side")
    value = right.amount if left.amount == 1 else right.amount / left.amount
    return _rate(left.currency, right.currency, value, text)


def to_usd(
    price: Price,
    rates: Mapping[str, Rate],
    *,
    source: str,
    path: str = "",
    provenance: str = "",
) -> UsdValue:
    """Convert a price to USD with the market's own rate, rounded half-even to the cent.

    ``rates`` maps a currency to its ``Rate`` against USD; ``source`` names where the rate came
    from (the banner's URL, a run id) so the figure can be traced. USD passes through at 1.

    >>> btc = Rate("BTC", "USD", Decimal("67012.50"), "1 BTC = $67,012.50")
    >>> to_usd(parse_price("0.0045 BTC"), {"BTC": btc}, source="banner").amount
    Decimal('301.56')
    """
    if price.currency == "USD":
        return UsdValue(_cents(price.amount, price), Decimal(1), "USD", source)
    rate = rates.get(price.currency)
    if rate is None:
        raise PriceError(price.text, f"no rate for {price.currency}")
    if rate.base != price.currency or rate.quote != "USD":
        raise PriceError(rate.text, f"rate is {rate.base}/{rate.quote}, need {price.currency}/USD")
    usd = _cents(price.amount * rate.value, price)
    return UsdValue(usd, rate.value, price.currency, source, path, provenance)


def _rate(base: str, quote: str, value: Decimal, text: str) -> Rate:
    """The rate, unless it is zero, negative or beyond any two currencies' ratio."""
    if not value.is_finite() or value <= 0:
        raise PriceError(text, "rate: not a positive number")
    if value > RATE_CAP:
        raise PriceError(text, f"rate: above the cap of {RATE_CAP:,f}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:  # 30000 / 0.5 is 6.000E+4: write it out
        value = value.quantize(Decimal(1))
    return Rate(base, quote, value, text)


def _cents(usd: Decimal, price: Price) -> Decimal:
    if not usd.is_finite() or usd > amount_cap("USD"):  # before quantize, which would overflow
        raise PriceError(price.text, f"USD value above the cap of {amount_cap('USD'):,f}")
    return usd.quantize(_CENT, ROUND_HALF_EVEN)


def _side(side: str, text: str) -> Price:
    try:
        return parse_price(side)
    except PriceError as exc:
        raise PriceError(text, f"rate side {side.strip()!r}: {exc.reason}") from exc


def _price(text: str, span: tuple[int, int], code: str, decimal_separator: str | None) -> Price:
    amount = _decimal(text[span[0] : span[1]], decimal_separator, text)
    return _checked(text, span, amount, code)


def _checked(text: str, span: tuple[int, int], amount: Decimal, code: str) -> Price:
    """The price, unless its number is no plain amount or is beyond the currency's cap."""
    problem = amount_problem(text, *span) or value_problem(amount, amount_cap(code))
    if problem is not None:
        raise PriceError(text, f"{code} amount: {problem}")
    return Price(amount, code, text)


def _decimal(number: str, decimal_separator: str | None, text: str) -> Decimal:
    try:
        return parse_decimal(number, decimal_separator)
    except ValueError as exc:
        raise PriceError(text, f"unreadable amount {number!r}") from exc
