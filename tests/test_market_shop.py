"""The "shop" market, defined by config/sources/shop.yaml alone, crawled against truth.

A vendor-shop layout (no categories: a shop directory, paginated shops, items under their
shop), USD-first, French relative dates, ISO-8859-1 and sloppy markup, with items linked from
two places: the same CLI, spider and normalisers as the demo and classic markets. Day 1 and
day 2 are crawled into the real MongoDB wire server and every field is scored against the
generator's ground truth (fixtures/market/accuracy.py, also used by bench/accuracy.py).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from crawler.replay import PAGES_DIR
from fixtures.market import build_world, truth
from fixtures.market.accuracy import new_and_changed, score
from fixtures.market.render import render
from fixtures.market.render_shop import FEATURED

if TYPE_CHECKING:
    pass


MARKET = "shop"  # the `exports` fixture (tests/conftest.py) crawls it on days 1 and 2


def test_the_market_has_the_variations_it_is_meant_to_test() -> None:
    world = truth("shop", 1)
    assert {t["price"]["currency"] for t in world["listings"]} == {"USD"}
    tier_prices = [Decimal(p["price"]["amount"]) for t in world["listings"] for p in t["tiers"]]
    assert max(tier_prices) >= 1000  # "$2,354.50": comma thousands
    texts = {t["quantity_text"] for t in world["listings"]}
    assert {"1/2 oz", "1 oz", "28g"} <= texts and any(" x " in t for t in texts)
    assert all(t["listing_id"].startswith(t["vendor_id"] + "-") for t in world["listings"])
    dates = {
        f["date"] for t in world["listings"] for f in t["feedback"] if f["date"] >= world["date"]
    }
    assert dates  # some feedback of the day itself: "il y a N heures"
    status, html = render(build_world("shop", 1), "/")
    assert status == 200 and html.count('class="article"') == FEATURED
    assert 'charset=iso-8859-1"' in html


@pytest.mark.parametrize("day", [1, 2])
def test_crawl_matches_ground_truth(exports: list[Any], day: int) -> None:
    export = exports[day - 1]
    assert export["run"]["status"] == "complete", export["run"]["reasons"]
    data, counts = truth("shop", day), export["run"]["counts"]
    assert counts["expected_listings"] == len(data["listings"])  # "100 articles" was read
    assert counts["expected_vendors"] == len(data["vendors"])
    result = score("shop", day, export)
    assert result.perfect, result.report(f"shop day {day}")
    assert result.fields["feedback.date"][1] > 100


def test_day_two_changes_are_the_true_changes(exports: list[Any]) -> None:
    changes = truth("shop", 2)["changes"]
    new, changed = new_and_changed(exports[1])
    assert new == changes["listings_new"]
    assert changed == changes["listings_changed"]


def test_replay_cases_agree_with_the_generators_truth() -> None:
    """The saved shop pages (fixtures/pages/shop/) were recorded on day 1: true."""
    listings = {t["listing_id"]: t for t in truth("shop", 1)["listings"]}
    outputs = sorted((PAGES_DIR / "shop" / "listing").glob("*/output.json"))
    assert len(outputs) >= 2
    for output in outputs:
        (record,) = json.loads(output.read_text(encoding="utf-8"))["records"]
        expected, content = listings[record["key"]], record["content"]
        assert content["price"]["amount"] == expected["price"]["amount"], output
        assert content["price"]["currency"] == expected["price"]["currency"] == "USD"
        assert content["quantity"]["text"] == expected["quantity_text"], output
        assert content["ships_to"] == expected["ships_to"], output
        assert [t["price"]["amount"] for t in content["tiers"]] == [
            t["price"]["amount"] for t in expected["tiers"]
        ], output
