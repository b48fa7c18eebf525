"""Locale-tolerant decimal reading shared by the price, quantity and rating parsers."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Grouping characters seen between digit groups: space, NBSP, narrow NBSP, thin space, apostrophe.
_GROUPING = " \u00a0\u202f\u2009'’"
NUMBER_PATTERN = r"\d(?:[\d.,\u00a0\u202f\u2009'’]*\d)?|[.,]\d+"
_GROUPS_OF_THREE = re.compile(r"^\d{1,3}(?:X\d{3})+$")


def parse_decimal(number: str, decimal_separator: str | None = None) -> Decimal:
    """Read a number written with any of the usual grouping and decimal conventions.

    Precision as written is kept (``"0.00450000"`` keeps its zeros) because researchers compare
    what markets showed. With ``decimal_separator`` the other of ``.``/``,`` is grouping.
    Without it: when both appear the last one is the decimal mark; a repeated one is grouping;
    a single ``.`` is decimal; a single ``,`` is grouping only when exactly three digits follow
    and the integer part is not ``0`` (``"1,234"`` but ``"3,5"`` and ``"0,250"`` are decimals).
    Raises ``ValueError`` when the text is not such a number.

    >>> parse_decimal("1.234,56"), parse_decimal("0.00450000"), parse_decimal("3,5")
    (Decimal('1234.56'), Decimal('0.00450000'), Decimal('3.5'))
    >>> parse_decimal("1,234"), parse_decimal("1.234", decimal_separator=",")
    (Decimal('1234'), Decimal('1234'))
    """
    s = number.strip()
    for ch in _GROUPING:
        s = s.replace(ch, "")
    if decimal_separator is None:
        decimal_separator = _guess_separator(s)
    elif decimal_separator not in ".,":
        raise ValueError(f"decimal_separator must be '.' or ',', got {decimal_separator!r}")
    group = "," if decimal_separator == "." else "."
    s = s.replace(group, "")
    if s.count(decimal_separator) > 1:
        raise ValueError(f"more than one decimal mark in {number!r}")
    s = s.replace(decimal_separator, ".")
    if not re.fullmatch(r"\d*\.?\d+|\d+\.", s):
        raise ValueError(f"not a number: {number!r}")
    try:
        return Decimal(s)
    except InvalidOperation as exc:  # pragma: no cover - the regex above rules this out
        raise ValueError(f"not a number: {number!r}") from exc


def _guess_separator(s: str) -> str:
    has_dot, has_comma = "." in s, "," in s
    if has_dot and has_comma:
        return "." if s.rfind(".") > s.rfind(",") else ","
    if has_comma:
        if s.count(",") > 1:
            return "."
        if _GROUPS_OF_THREE.match(s.replace(",", "X")) and not s.startswith("0"):
            return "."
        return ","
    if s.count(".") > 1:
        return ","
    return "."


# More digits than this is no price, weight or count a market means (an ETH amount to the wei
# has 19); Decimal128, which stores them, holds 34.
MAX_DIGITS = 24
# "1e999", "1.5E+3": a number in exponent notation, which markets never use for prices.
_EXPONENT = re.compile(r"(?:\d[\d.,]*|[.,]\d+)[eE][+-]?\d+")
# A minus sign standing right before the number, or before its currency symbol or code:
# "-5", "$-5", "-$5", "USD -10". A hyphen after a word or a digit ("5-10 g") is a range or a
# separator, and so is one followed by a space ("crystals - 1g").
_NEGATIVE = re.compile(r"(?<![\w.,])[-−－](?:[^\w\s]{1,4}\s*|[A-Za-z]{3}\s*)?$")


def amount_problem(text: str, start: int, end: int) -> str | None:
    """Why the number found at ``text[start:end]`` is not a plain amount, or ``None``.

    The parsers find numbers with a regex that knows no signs and no exponents, so
    ``"1e999 BTC"`` would read as 999 and ``"-5 BTC"`` as 5; this looks around the match.

    >>> amount_problem("1e999 BTC", 2, 5), amount_problem("-5 BTC", 1, 2)
    ('exponent notation', 'negative amount')
    >>> amount_problem("5-10 g", 2, 4) is None
    True
    """
    digits = sum(ch.isdigit() for ch in text[start:end])
    if digits > MAX_DIGITS:
        return f"{digits} digits (at most {MAX_DIGITS})"
    for found in _EXPONENT.finditer(text):
        if found.start() < end and start < found.end():
            return "exponent notation"
    if _NEGATIVE.search(text, 0, start):
        return "negative amount"
    return None


def value_problem(value: Decimal, cap: Decimal) -> str | None:
    """Why ``value`` is not a finite amount in ``[0, cap]``, or ``None``.

    >>> value_problem(Decimal("5"), Decimal(10)), value_problem(Decimal("11"), Decimal(10))
    (None, 'above the cap of 10')
    >>> value_problem(Decimal("2e9"), Decimal("1e9"))
    'above the cap of 1,000,000,000'
    """
    if not value.is_finite():
        return "not a finite number"
    if value < 0:
        return "negative amount"
    if value > cap:
        return f"above the cap of {cap:,f}"
    return None
