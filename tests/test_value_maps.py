"""A market's own words, mapped per source: the text is stored as shown, its meaning read.

"Domestic" is the listing's own ships-from country, "EU only" the EU, "1 copy" one unit,
a review "Positive" a 5 out of 5: found on real markets, readable before only by XPath
tricks that replaced the raw text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from crawler.sources.model import NormaliseHints, ValueMaps
from pipelines.entities import Reader

HINTS = NormaliseHints(
    languages=["en", "ru"],
    values=ValueMaps(
        countries={"Domestic": "@ships_from", "EU only": "EU", "Весь мир": "*"},
        units={"copy": "unit", "copies": "unit", "шт": "unit"},
        ratings={"Positive": "5/5", "Neutral": "3/5", "Negative": "1/5"},
    ),
)


def _reader() -> Reader:
    return Reader(HINTS, datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("ships_from", "ships_to", "origin", "destinations"),
    [
        ("Germany", "Domestic", "DE", ["DE"]),
        ("Germany", "Domestic, EU only", "DE", ["DE", "EU"]),
        ("Netherlands", "domestic / Worldwide", "NL", ["NL", "*"]),
        ("Россия", "Весь мир", "RU", ["*"]),  # pycountry's Russian name, then the map
        ("Germany", "Germany, Domestic", "DE", ["DE"]),  # once, however it is named
    ],
)
def test_destinations_in_the_markets_words(
    ships_from: str, ships_to: str, origin: str, destinations: list[str]
) -> None:
    reader = _reader()
    got = reader.shipping({"ships_from": ships_from, "ships_to": ships_to})
    assert (got["ships_from"], got["ships_to"]) == (origin, destinations)
    assert (got["ships_from_text"], got["ships_to_text"]) == (ships_from, ships_to)
    assert reader.problems == []


def test_domestic_without_a_ships_from_country_is_a_problem_not_a_guess() -> None:
    reader = _reader()
    got = reader.shipping({"ships_from": None, "ships_to": "Domestic, EU only"})
    assert got["ships_to"] == ["EU"]
    assert reader.problems == [
        "field ships_to: 'Domestic, EU only' means the ships-from country, which is unknown"
    ]


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("1 copy", "1", "unit"),
        ("10 copies", "10", "unit"),
        ("5 шт", "5", "unit"),
        ("5шт", "5", "unit"),  # glued to the number, as Russian markets often write it
        ("2 шт.", "2", "unit"),
    ],
)
def test_unit_words_of_the_market(text: str, amount: str, unit: str) -> None:
    value, _ = _reader().quantity("quantity", text)
    assert value is not None
    assert (value["amount"], value["unit"], value["text"]) == (Decimal(amount), unit, text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("Positive", "1.0000"), ("neutral", "0.6000"), ("Negative", "0.2000"), ("4/5", "0.8000")],
)
def test_rating_words_of_the_market(text: str, value: str) -> None:
    rating = _reader().rating("feedback[0].rating", text)
    assert rating is not None and rating.value == Decimal(value) and rating.text == text


@pytest.mark.parametrize(
    ("maps", "message"),
    [
        ({"countries": {"Domestic": "Germany"}}, "not an ISO alpha-2 code"),
        ({"units": {"copy": "pieces"}}, "is not one of"),
    ],
)
def test_a_map_to_nothing_the_normalisers_know_fails_on_load(
    maps: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ValueMaps(**maps)
