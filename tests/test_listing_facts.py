"""The open data model: facts real markets show, each read only where a source reads it.

Listed and updated dates, availability, sales counts, escrow and finalize-early flags,
shipping options with their own prices, vendor levels and badges, and a source's own
fields (`extra_fields`). A source that reads none of them stores the same content as
before, so an upgrade writes no new versions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from crawler.sources.model import NormaliseHints, ValueMaps
from pipelines.entities import Reader, listing_record, vendor_record
from pipelines.normalise import FlagError, parse_flag

BASE = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PLAIN = {"title": "Hash 5g", "price": "0.001 BTC", "vendor_id": "v1", "category_path": []}


def _reader(**values: object) -> Reader:
    return Reader(NormaliseHints(values=ValueMaps(**values)), BASE)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("In stock", True),
        ("Out of stock", False),
        ("SOLD OUT", False),
        ("Available", True),
        ("Not available", False),
        ("Escrow: yes", True),
        ("FE: not allowed", False),
        ("✓", True),
        ("Ausverkauft", False),
        ("Auf Lager", True),
        ("Épuisé", False),
        ("En stock", True),
        ("Нет в наличии", False),
        ("В наличии", True),
    ],
)
def test_flags_in_the_words_markets_use(text: str, expected: bool) -> None:
    assert parse_flag(text) is expected


def test_a_flag_that_says_neither_is_a_problem() -> None:
    with pytest.raises(FlagError, match="neither yes nor no"):
        parse_flag("ships in 2 days")


def test_a_listing_with_every_fact() -> None:
    reader = _reader(flags={"100% escrow": True})
    fields = {
        **PLAIN,
        "listed": "Listed 3 days ago",
        "updated": "yesterday",
        "availability": "Out of stock",
        "sales": "Sold: 1,234 since 2025",
        "escrow": "100% Escrow",
        "finalize_early": "FE: not allowed",
        "shipping_options": [
            {"name": "Standard", "price": "$5.00"},
            {"name": "Express", "price": "$25"},
        ],
        "batch": "B-77",
    }
    content = listing_record(reader, fields, extra=["batch"])
    assert reader.problems == []
    # "N days ago" holds any rounding: from N+1 days (and the clock slack) before the page
    assert content["listed"]["earliest"] == datetime(2026, 3, 6, 11, 45, tzinfo=UTC)
    assert content["updated"]["earliest"] == datetime(2026, 3, 8, 11, 45, tzinfo=UTC)
    assert (content["in_stock"], content["availability_text"]) == (False, "Out of stock")
    assert (content["sales"], content["sales_text"]) == (1234, "Sold: 1,234 since 2025")
    assert (content["escrow"], content["finalize_early"]) == (True, False)
    assert [o["name"] for o in content["shipping_options"]] == ["Standard", "Express"]
    assert content["shipping_options"][1]["price"]["amount"] == Decimal(25)
    assert content["extra"] == {"batch": "B-77"}


def test_a_source_reading_none_of_them_stores_what_it_stored_before() -> None:
    content = listing_record(_reader(), PLAIN)
    assert set(content) == {
        "title", "category_path", "description", "vendor", "price", "quantity",
        "price_per_unit", "tiers", "ships_from", "ships_from_text", "ships_to",
        "ships_to_text",
    }  # fmt: skip


def test_an_unreadable_fact_is_a_problem_and_keeps_its_text() -> None:
    reader = _reader()
    content = listing_record(reader, {**PLAIN, "availability": "ask the vendor"})
    assert (content["in_stock"], content["availability_text"]) == (None, "ask the vendor")
    assert reader.problems == ["field availability: neither yes nor no: 'ask the vendor'"]


def test_vendor_level_badges_and_sales() -> None:
    fields = {
        "name": "v1",
        "level": "Level 3 vendor",
        "badges": ["Trusted", " Verified "],
        "sales": "12k sales",
    }
    content = vendor_record(_reader(), fields)
    assert content["level"] == {"value": 3, "text": "Level 3 vendor"}
    assert content["badges"] == ["Trusted", "Verified"]
    assert content["sales"] == 12000
