"""Quantities on listings ("28 g", "100 x 10mg", "1/2 oz", "10 pills") and price per unit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from pipelines.normalise.errors import QuantityError
from pipelines.normalise.numbers import (
    NUMBER_PATTERN,
    amount_problem,
    parse_decimal,
    value_problem,
)

if TYPE_CHECKING:
    from pipelines.normalise.prices import Price

# Every spelling met on markets (English and German), lower-cased, to the unit vocabulary
# g, mg, kg, oz, lb, ml, l, ug, unit.
UNIT_ALIASES: dict[str, str] = {
    **dict.fromkeys(["g", "gr", "grs", "gram", "grams", "gramm", "gramme", "grammes"], "g"),
    **dict.fromkeys(["mg", "milligram", "milligrams", "milligramm"], "mg"),
    **dict.fromkeys(["kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "kilogramm"], "kg"),
    **dict.fromkeys(["oz", "ozs", "ounce", "ounces", "unze", "unzen"], "oz"),
    **dict.fromkeys(["lb", "lbs", "pound", "pounds", "pfund"], "lb"),
    **dict.fromkeys(["ml", "milliliter", "milliliters", "millilitre", "millilitres"], "ml"),
    **dict.fromkeys(["l", "liter", "liters", "litre", "litres"], "l"),
    **dict.fromkeys(["ug", "µg", "μg", "mcg", "microgram", "micrograms", "mikrogramm"], "ug"),
    **dict.fromkeys(
        [
            "unit", "units", "pill", "pills", "tab", "tabs", "tablet", "tablets", "cap", "caps",
            "capsule", "capsules", "blotter", "blotters", "piece", "pieces", "pcs", "pc",
            "pack", "packs", "stück", "stk", "stk.", "tabletten", "pillen", "kapseln",
            "pièce", "pièces", "comprimé", "comprimés", "gélule", "gélules",
        ],
        "unit",
    ),
}  # fmt: skip

# Grams per unit for the masses; oz and lb are avoirdupois.
GRAMS_PER: dict[str, Decimal] = {
    "ug": Decimal("0.000001"),
    "mg": Decimal("0.001"),
    "g": Decimal(1),
    "kg": Decimal(1000),
    "oz": Decimal("28.349523125"),
    "lb": Decimal("453.59237"),
}

# Above a thousand tonnes, a thousand cubic metres or a billion pieces nothing is an offer.
QUANTITY_CAP = Decimal(10) ** 9
_BASE_UNITS = {**GRAMS_PER, "l": Decimal(1000)}  # to grams, and litres to ml
_BASE_NAMES = {**dict.fromkeys(GRAMS_PER, "g"), "l": "ml"}

_FRACTIONS = {"½": "1/2", "¼": "1/4", "¾": "3/4", "⅛": "1/8"}
_UNIT = "|".join(re.escape(u) for u in sorted(UNIT_ALIASES, key=len, reverse=True))
_AMOUNT = rf"(?:\d+\s*/\s*\d+|{NUMBER_PATTERN})"
_TIMES = r"\s*[x×*]\s*"
_PATTERNS = [  # tried in order; the pack forms first so "100 x 10mg" is not read as "100"
    re.compile(rf"(?P<count>\d+){_TIMES}(?P<amount>{_AMOUNT})\s*(?P<unit>{_UNIT})(?![^\W\d_])"),
    re.compile(
        rf"(?P<count>\d+)\s*(?:{_UNIT}){_TIMES}(?P<amount>{_AMOUNT})\s*(?P<unit>{_UNIT})"
        rf"(?![^\W\d_])"
    ),
    re.compile(rf"(?P<amount>{_AMOUNT})\s*(?P<unit>{_UNIT})(?![^\W\d_]){_TIMES}(?P<count>\d+)"),
    re.compile(rf"(?P<amount>{_AMOUNT})\s*(?P<unit>{_UNIT})(?![^\W\d_])"),
]


@dataclass(frozen=True, slots=True)
class Quantity:
    """``count`` packs of ``amount`` ``unit`` (``count`` is ``None`` for a single amount)."""

    amount: Decimal
    unit: str
    count: int | None
    text: str

    @property
    def total(self) -> Decimal:
        """Everything on offer in ``unit``: count × amount when there is a pack count.

        >>> parse_quantity("100 x 10mg").total
        Decimal('1000')
        """
        return self.amount if self.count is None else self.amount * self.count

    @property
    def grams(self) -> Decimal | None:
        """The total in grams for a mass, ``None`` for volumes and units.

        >>> parse_quantity("1 oz").grams, parse_quantity("5 ml").grams
        (Decimal('28.349523125'), None)
        """
        factor = GRAMS_PER.get(self.unit)
        return None if factor is None else self.total * factor


def parse_quantity(text: str, *, decimal_separator: str | None = None) -> Quantity:
    """Read the first quantity in a listing string.

    Units are normalised to g, mg, kg, oz, lb, ml, l, ug or ``unit`` (pills, tabs, blotters…).
    A comma is decimal unless exactly three digits follow (``"3,5 g"`` is 3.5, ``"1,000
    pills"`` is 1000); pass ``decimal_separator`` to settle it. Fractions like ``1/2 oz`` and
    ``½ oz`` become decimals (1/3 is rounded to 28 significant digits).
    A minus sign, exponent notation, more than 24 digits or a total above a thousand tonnes
    (a million litres, a billion pieces) raises ``QuantityError``.

    >>> parse_quantity("3,5 g")
    Quantity(amount=Decimal('3.5'), unit='g', count=None, text='3,5 g')
    >>> q = parse_quantity("100 x 10mg"); (q.count, q.amount, q.unit)
    (100, Decimal('10'), 'mg')
    """
    search = text
    for glyph, fraction in _FRACTIONS.items():
        search = search.replace(glyph, fraction)
    search = search.lower()  # may change its length ("İ"): spans below are into this text
    for pattern in _PATTERNS:
        match = pattern.search(search)
        if match:
            break
    else:
        raise QuantityError(text, "no amount with a unit")
    for group in ("count", "amount"):
        problem = group in match.groupdict() and amount_problem(search, *match.span(group))
        if problem:
            raise QuantityError(text, f"{group}: {problem}")
    amount = _amount(match.group("amount"), decimal_separator, text)
    unit = UNIT_ALIASES[match.group("unit")]
    count = int(match.group("count")) if "count" in match.groupdict() else None
    if count is not None and count <= 0:
        raise QuantityError(text, "pack count must be positive")
    quantity = Quantity(amount, unit, count, text)
    base = quantity.total * _BASE_UNITS.get(unit, Decimal(1))
    problem = value_problem(base, QUANTITY_CAP)
    if problem is not None:
        raise QuantityError(text, f"total in {_BASE_NAMES.get(unit, unit)}: {problem}")
    return quantity


def price_per_unit(price: Price, quantity: Quantity) -> Decimal | None:
    """Price per gram for masses, per ``unit`` (ml, l, unit) otherwise; ``None`` for zero.

    Not rounded: the caller decides the precision it reports.

    >>> from pipelines.normalise.prices import parse_price
    >>> price_per_unit(parse_price("$250.00"), parse_quantity("1 kg"))
    Decimal('0.25')
    """
    size = quantity.grams if quantity.grams is not None else quantity.total
    if size == 0:
        return None
    return price.amount / size


def _amount(raw: str, decimal_separator: str | None, text: str) -> Decimal:
    if "/" in raw:
        numerator, denominator = (Decimal(part.strip()) for part in raw.split("/"))
        if denominator == 0:
            raise QuantityError(text, "fraction with a zero denominator")
        return numerator / denominator
    try:
        return parse_decimal(raw, decimal_separator)
    except ValueError as exc:
        raise QuantityError(text, f"unreadable amount {raw!r}") from exc
