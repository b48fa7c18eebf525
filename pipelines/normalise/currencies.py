"""Currency vocabulary: crypto tickers, names and symbols, and fiat symbols to ISO 4217."""

from __future__ import annotations

import re
from decimal import Decimal

import pycountry

CRYPTO_CODES: frozenset[str] = frozenset({"BTC", "XMR", "LTC", "ETH", "BCH", "ZEC", "DASH"})

# Every way a market writes a crypto currency, lower-cased, mapped to its ticker.
# "bitcoin cash" must win over "bitcoin": the regex below tries the longest alias first.
CRYPTO_ALIASES: dict[str, str] = {
    "btc": "BTC",
    "xbt": "BTC",
    "₿": "BTC",
    "ƀ": "BTC",  # lower case of "Ƀ"; lookups are case-insensitive
    "bitcoin": "BTC",
    "bitcoins": "BTC",
    "xmr": "XMR",
    "monero": "XMR",
    "ɱ": "XMR",
    "ltc": "LTC",
    "litecoin": "LTC",
    "litecoins": "LTC",
    "ł": "LTC",
    "eth": "ETH",
    "ether": "ETH",
    "ethereum": "ETH",
    "ξ": "ETH",
    "bch": "BCH",
    "bitcoin cash": "BCH",
    "zec": "ZEC",
    "zcash": "ZEC",
    "dash": "DASH",
}

# Fiat symbols as price-parser reports them (its ``currency`` is the raw text) to ISO 4217.
# "¥" is read as JPY and "kr" is left out: both are ambiguous between countries.
FIAT_SYMBOLS: dict[str, str] = {
    "$": "USD",
    "us$": "USD",
    "usd$": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "€": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "eur€": "EUR",
    "£": "GBP",
    "gbp£": "GBP",
    "¥": "JPY",
    "₽": "RUB",
    "руб": "RUB",
    "руб.": "RUB",
    "ca$": "CAD",
    "c$": "CAD",
    "au$": "AUD",
    "a$": "AUD",
    "nz$": "NZD",
    "r$": "BRL",
    "zł": "PLN",
    "₹": "INR",
    "₺": "TRY",
    "₴": "UAH",
    "fr.": "CHF",
    "sfr": "CHF",
    "₩": "KRW",
}

_ALIAS_ALTERNATION = "|".join(re.escape(a) for a in sorted(CRYPTO_ALIASES, key=len, reverse=True))
# A crypto alias standing alone: letters must not run on into a longer word ("ethereal").
CRYPTO_PATTERN = rf"(?<![A-Za-z])(?:{_ALIAS_ALTERNATION})(?![A-Za-z])"


def crypto_code(alias: str) -> str | None:
    """Ticker for a crypto alias, or ``None`` when it is not one.

    >>> crypto_code("Monero"), crypto_code("₿"), crypto_code("EUR")
    ('XMR', 'BTC', None)
    """
    return CRYPTO_ALIASES.get(" ".join(alias.split()).lower())


def currency_code(symbol: str) -> str | None:
    """ISO 4217 code (or crypto ticker) for a currency symbol, name or code; else ``None``.

    >>> currency_code("US$"), currency_code("€"), currency_code("chf"), currency_code("XBT")
    ('USD', 'EUR', 'CHF', 'BTC')
    """
    key = " ".join(symbol.split()).lower()
    if not key:
        return None
    if key in FIAT_SYMBOLS:
        return FIAT_SYMBOLS[key]
    if key in CRYPTO_ALIASES:
        return CRYPTO_ALIASES[key]
    if len(key) == 3 and key.isalpha() and pycountry.currencies.get(alpha_3=key.upper()):
        return key.upper()
    return None


# Largest believable amount per currency: about a billion US dollars, rounded up to a power
# of ten so that years of exchange-rate moves do not matter. Above it a price is a typo, a
# placeholder or an attack, and becomes a problem on its field instead of a number.
_POWER = {9: ("USD", "EUR", "GBP", "CHF"), 10: ("CAD", "AUD", "NZD", "PLN", "BRL")}
AMOUNT_CAPS: dict[str, Decimal] = {
    **{code: Decimal(10) ** power for power, codes in _POWER.items() for code in codes},
    **dict.fromkeys(("TRY", "UAH", "RUB", "INR"), Decimal(10) ** 11),
    "JPY": Decimal(10) ** 12,
    "KRW": Decimal(10) ** 13,
    "BTC": Decimal(10) ** 5,
    "ETH": Decimal(10) ** 6,
    "BCH": Decimal(10) ** 7,
    "XMR": Decimal(10) ** 7,
    "LTC": Decimal(10) ** 8,
    "ZEC": Decimal(10) ** 8,
    "DASH": Decimal(10) ** 8,
}
_OTHER_CAP = Decimal(10) ** 13  # any other ISO 4217 code: the weakest trade ~50,000 per USD


def amount_cap(code: str) -> Decimal:
    """The largest amount of ``code`` read as a price.

    >>> amount_cap("BTC"), amount_cap("USD"), amount_cap("VND")
    (Decimal('100000'), Decimal('1000000000'), Decimal('10000000000000'))
    """
    return AMOUNT_CAPS.get(code, _OTHER_CAP)
