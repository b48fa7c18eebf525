"""The "grid" market, defined by config/sources/grid.yaml alone, crawled against truth.

Listing cards in a CSS grid, "Load more" offsets, listing ids only in URLs, XMR prices with a
dollar approximation, US English with month-first and relative dates: the same CLI, spider
and normalisers as the demo and classic markets. Day 1 and day 2 are crawled into the real
MongoDB wire server and every field is scored against the generator's ground truth
(fixtures/market/accuracy.py, also used by bench/accuracy.py).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from crawler.replay import PAGES_DIR
from fixtures.market import build_world, truth
from fixtures.market.accuracy import new_and_changed, score
from fixtures.market.formats_grid import relative_date
from fixtures.market.render_grid import PAGE_SIZE

if TYPE_CHECKING:
    pass


MARKET = "grid"  # the `exports` fixture (tests/conftest.py) crawls it on days 1 and 2


def test_the_market_has_the_variations_it_is_meant_to_test() -> None:
    data, world = truth("grid", 1), build_world("grid", 1)
    assert {t["price"]["currency"] for t in data["listings"]} == {"XMR"}
    assert max(data["counts"].values()) > PAGE_SIZE  # some categories need "Load more"
    assert any(t["tiers"] for t in data["listings"])
    texts = {t["quantity_text"] for t in data["listings"]}
    assert {"1 oz", "28g", "5 pcs", "1 pc"} <= texts and any(" x " in t for t in texts)
    shown = {
        relative_date(entry.date, entry.hour, world.date)
        for listing in world.listings.values()
        for entry in listing.feedback[:8]
    }
    assert {"last week", "yesterday"} <= shown
    assert any(text.endswith("days ago") for text in shown)
    assert any(text.count("/") == 2 for text in shown)  # "12/31/2025"


@pytest.mark.parametrize("day", [1, 2])
def test_crawl_matches_ground_truth(exports: list[Any], day: int) -> None:
    export = exports[day - 1]
    assert export["run"]["status"] == "complete", export["run"]["reasons"]
    data = truth("grid", day)
    counts = export["run"]["counts"]
    assert counts["expected_listings"] == len(data["listings"])  # the "N results" were read
    assert counts["expected_vendors"] == len(data["vendors"])
    result = score("grid", day, export)
    assert result.perfect, result.report(f"grid day {day}")
    assert result.fields["feedback.date"][1] > 100


def test_day_two_changes_are_the_true_changes(exports: list[Any]) -> None:
    changes = truth("grid", 2)["changes"]
    new, changed = new_and_changed(exports[1])
    assert new == changes["listings_new"]
    assert changed == changes["listings_changed"]


def test_replay_cases_agree_with_the_generators_truth() -> None:
    """The saved grid pages (fixtures/pages/grid/) were recorded on day 1: true."""
    listings = {t["listing_id"]: t for t in truth("grid", 1)["listings"]}
    outputs = sorted((PAGES_DIR / "grid" / "listing").glob("*/output.json"))
    assert len(outputs) >= 2
    for output in outputs:
        recorded = json.loads(output.read_text(encoding="utf-8"))
        (record,) = recorded["records"]
        expected, content = listings[record["key"]], record["content"]
        assert Decimal(content["price"]["amount"]) == Decimal(expected["price"]["amount"])
        assert content["price"]["currency"] == expected["price"]["currency"] == "XMR"
        assert content["quantity"]["text"] == expected["quantity_text"], output
        assert content["ships_to"] == expected["ships_to"], output
        assert [t["quantity"]["text"] for t in content["tiers"]] == [
            t["quantity_text"] for t in expected["tiers"]
        ], output
        assert len(recorded["feedback"]) == len(expected["feedback"]), output
