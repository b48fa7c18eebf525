"""Quantity strings from listing titles and tier tables, and price per unit.

Rows follow what listings show: a weight glued to its unit ("28g") or spaced ("28 g"), comma
decimals from German-speaking vendors ("3,5 g"), fractions of an ounce ("1/2 oz", "½ oz"),
pack notation for pills ("100 x 10mg", "10mg x 100", "100 pills x 10mg"), counted items
("10 pills", "10 tabs", "25 Stück"), volumes ("5 ml") and labelled fields ("Quantity: 28 g").
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.normalise import (
    Price,
    Quantity,
    QuantityError,
    parse_quantity,
    price_per_unit,
)

D = Decimal


@pytest.mark.parametrize(
    ("text", "kwargs", "amount", "unit", "count"),
    [
        ("28 g", {}, D("28"), "g", None),
        ("28g", {}, D("28"), "g", None),
        ("3.5g", {}, D("3.5"), "g", None),
        ("3,5 g", {}, D("3.5"), "g", None),
        ("3,5g", {"decimal_separator": ","}, D("3.5"), "g", None),
        ("1 Stück", {"decimal_separator": ","}, D("1"), "unit", None),
        ("100 x 10mg", {"decimal_separator": ","}, D("10"), "mg", 100),
        # US English, from the grid fixture market's pages
        ("5 pcs", {"decimal_separator": "."}, D("5"), "unit", None),
        ("1 pc", {"decimal_separator": "."}, D("1"), "unit", None),
        ("1 oz", {"decimal_separator": "."}, D("1"), "oz", None),
        ("1000 x 20mg", {"decimal_separator": "."}, D("20"), "mg", 1000),
        ("0,250 g", {}, D("0.250"), "g", None),
        ("1,000 g", {"decimal_separator": ","}, D("1.000"), "g", None),
        ("1.5 grams", {}, D("1.5"), "g", None),
        ("10 Gramm", {}, D("10"), "g", None),
        ("7 gr", {}, D("7"), "g", None),
        ("1 oz", {}, D("1"), "oz", None),
        ("1/2 oz", {}, D("0.5"), "oz", None),
        ("1/4oz", {}, D("0.25"), "oz", None),
        ("1/8 oz", {}, D("0.125"), "oz", None),
        ("½ oz", {}, D("0.5"), "oz", None),
        ("2 ounces", {}, D("2"), "oz", None),
        ("1 lb", {}, D("1"), "lb", None),
        ("1 kg", {}, D("1"), "kg", None),
        ("1 kilo", {}, D("1"), "kg", None),
        ("5 ml", {}, D("5"), "ml", None),
        ("0.5 L", {}, D("0.5"), "l", None),
        ("250µg", {}, D("250"), "ug", None),
        ("150 mcg", {}, D("150"), "ug", None),
        ("100 x 10mg", {}, D("10"), "mg", 100),
        ("100x 10 mg", {}, D("10"), "mg", 100),
        ("100x10mg", {}, D("10"), "mg", 100),
        ("50 × 2,5 mg", {}, D("2.5"), "mg", 50),
        ("10mg x 100", {}, D("10"), "mg", 100),
        ("100 pills x 10mg", {}, D("10"), "mg", 100),
        ("10 pills", {}, D("10"), "unit", None),
        ("10 tabs", {}, D("10"), "unit", None),
        ("10 units", {}, D("10"), "unit", None),
        ("1 blotter", {}, D("1"), "unit", None),
        ("1,000 pills", {}, D("1000"), "unit", None),
        ("25 Stück", {}, D("25"), "unit", None),
        ("20 Tabletten", {}, D("20"), "unit", None),
        # French, from the shop fixture market's pages
        ("10 pièces", {"decimal_separator": "."}, D("10"), "unit", None),
        ("1 pièce", {}, D("1"), "unit", None),
        ("1/2 oz", {"decimal_separator": "."}, D("0.5"), "oz", None),
        ("2.5 oz", {"decimal_separator": "."}, D("2.5"), "oz", None),
        ("10 x 100mg", {"decimal_separator": "."}, D("100"), "mg", 10),
        ("Quantity: 28 g", {}, D("28"), "g", None),
        ("MDMA 84% crystals - 1g", {}, D("1"), "g", None),
        ("Xanax 2mg bars - 100 x 2mg", {}, D("2"), "mg", 100),
    ],
)
def test_parse_quantity(
    text: str, kwargs: dict[str, str], amount: Decimal, unit: str, count: int | None
) -> None:
    assert parse_quantity(text, **kwargs) == Quantity(amount, unit, count, text)


@pytest.mark.parametrize(
    ("text", "total", "grams"),
    [
        ("28 g", D("28"), D("28")),
        ("100 x 10mg", D("1000"), D("1")),
        ("1 oz", D("1"), D("28.349523125")),
        ("1/2 oz", D("0.5"), D("14.1747615625")),
        ("1 lb", D("1"), D("453.59237")),
        ("1 kg", D("1"), D("1000")),
        ("250µg", D("250"), D("0.00025")),
        ("10 pills", D("10"), None),
        ("5 ml", D("5"), None),
    ],
)
def test_total_and_grams(text: str, total: Decimal, grams: Decimal | None) -> None:
    quantity = parse_quantity(text)
    assert quantity.total == total
    assert quantity.grams == grams


@pytest.mark.parametrize(
    "text",
    ["", "Escrow only", "28", "100 x", "gram", "5 gabapentin", "0 x 10mg", "1/0 oz"],
)
def test_parse_quantity_fails(text: str) -> None:
    with pytest.raises(QuantityError) as info:
        parse_quantity(text)
    assert info.value.text == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # absurd numbers (issue 10): once read as 999 g, 3 g and so on, with no problem
        ("1e999 g", "amount: exponent notation"),
        ("2.5E+3 mg", "amount: exponent notation"),
        ("-3 g", "amount: negative amount"),
        ("−0,5 g", "amount: negative amount"),  # U+2212 minus sign
        ("-3 x 10mg", "count: negative amount"),
        ("1" * 50 + " g", "amount: 50 digits"),
        ("1" * 30 + " x 10mg", "count: 30 digits"),
        ("99999999999999 kg", "total in g: above the cap of 1,000,000,000"),
        ("10000000000000000000000 x 1g", "total in g: above the cap"),
        ("2000000 l", "total in ml: above the cap"),
        ("2000000000 pills", "total in unit: above the cap"),
    ],
)
def test_parse_quantity_refuses_absurd_numbers(text: str, reason: str) -> None:
    with pytest.raises(QuantityError, match=reason) as info:
        parse_quantity(text)
    assert info.value.text == text


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("MDMA 84% crystals - 1g", D("1"), "g"),  # a spaced dash separates: it is no sign
        ("5-10 g", D("10"), "g"),  # nor is a range's dash
        ("1000000 kg", D("1000000"), "kg"),  # a thousand tonnes: the cap itself
    ],
)
def test_a_dash_that_is_no_minus_sign_is_read(text: str, amount: Decimal, unit: str) -> None:
    quantity = parse_quantity(text)
    assert (quantity.amount, quantity.unit) == (amount, unit)


@pytest.mark.parametrize(
    ("price", "quantity", "expected"),
    [
        (Price(D("250.00"), "USD", "$250.00"), "28 g", D("250.00") / 28),
        (Price(D("250.00"), "USD", "$250.00"), "1 kg", D("0.25")),
        (Price(D("0.0045"), "BTC", "0.0045 BTC"), "3.5g", D("0.0045") / D("3.5")),
        (Price(D("120"), "EUR", "120 €"), "100 x 10mg", D("120")),  # 1 g in total
        (Price(D("50"), "USD", "$50"), "10 pills", D("5")),
        (Price(D("30"), "USD", "$30"), "5 ml", D("6")),
        (Price(D("30"), "USD", "$30"), "0 g", None),
    ],
)
def test_price_per_unit(price: Price, quantity: str, expected: Decimal | None) -> None:
    assert price_per_unit(price, parse_quantity(quantity)) == expected
