"""The "classic" market, defined by config/sources/classic.yaml alone, crawled against truth.

A table-based, German, fiat-first market in windows-1252 with broken markup and listings
shown in two categories: the same CLI, spider and normalisers as the demo market. Day 1 and
day 2 are crawled into the real MongoDB wire server and every field is scored against the
generator's ground truth (fixtures/market/accuracy.py, also used by bench/accuracy.py).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from crawler.replay import PAGES_DIR
from fixtures.market import truth
from fixtures.market.accuracy import new_and_changed, score

if TYPE_CHECKING:
    pass


MARKET = "classic"  # the `exports` fixture (tests/conftest.py) crawls it on days 1 and 2


def test_the_market_has_the_variations_it_is_meant_to_test() -> None:
    world = truth("classic", 1)
    shown_in_categories = sum(world["counts"].values())
    assert shown_in_categories > len(world["listings"])  # some listings are in two categories
    assert {t["price"]["currency"] for t in world["listings"]} == {"EUR"}
    tier_prices = [Decimal(p["price"]["amount"]) for t in world["listings"] for p in t["tiers"]]
    assert max(tier_prices) >= 1000  # "2.495,50 €": dot thousands, comma decimals
    texts = {t["quantity_text"] for t in world["listings"]}
    assert any("," in t for t in texts) and any(" x " in t for t in texts)


@pytest.mark.parametrize("day", [1, 2])
def test_crawl_matches_ground_truth(exports: list[Any], day: int) -> None:
    export = exports[day - 1]
    assert export["run"]["status"] == "complete", export["run"]["reasons"]
    result = score("classic", day, export)
    assert result.perfect, result.report(f"classic day {day}")
    assert result.fields["feedback.date"][1] > 100


def test_day_two_changes_are_the_true_changes(exports: list[Any]) -> None:
    changes = truth("classic", 2)["changes"]
    new, changed = new_and_changed(exports[1])
    assert new == changes["listings_new"]
    assert changed == changes["listings_changed"]


def test_replay_cases_agree_with_the_generators_truth() -> None:
    """The saved classic pages (fixtures/pages/classic/) were recorded on day 1: true."""
    listings = {t["listing_id"]: t for t in truth("classic", 1)["listings"]}
    outputs = sorted((PAGES_DIR / "classic" / "listing").glob("*/output.json"))
    assert len(outputs) >= 2
    for output in outputs:
        (record,) = json.loads(output.read_text(encoding="utf-8"))["records"]
        expected, content = listings[record["key"]], record["content"]
        assert content["price"]["amount"] == expected["price"]["amount"], output
        assert content["price"]["currency"] == expected["price"]["currency"] == "EUR"
        assert content["quantity"]["text"] == expected["quantity_text"], output
        assert content["ships_to"] == expected["ships_to"], output
        assert [t["price"]["amount"] for t in content["tiers"]] == [
            t["price"]["amount"] for t in expected["tiers"]
        ], output
