"""The "bazaar" market, defined by config/sources/bazaar.yaml alone, crawled against truth.

Product cards and definition lists, USD first with a BTC estimate beside every price (a few
bitcoin vendors: a dollar estimate beside theirs, the only rate those prices have) and no
rate line; destinations in the market's words ("Domestic", "EU only"), trust in percent,
review stars, listed/updated dates ("Listed 3 days ago"), sales counts, escrow and FE flags,
shipping options with their own prices, out-of-stock items, and every listing linked under
two URLs (`/o/<id>/<slug>` from categories, `/o/<id>/x` from its store). Days 1 and 2 are
crawled by the CLI into the real MongoDB wire server and every field, with its raw text, is
scored against the generator's ground truth (fixtures/market/accuracy.py).
"""

from __future__ import annotations

import doctest
import json
import os
import re
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from crawler.replay import PAGES_DIR
from fixtures.market import build_world, formats_bazaar, render_bazaar, truth
from fixtures.market.accuracy import new_and_changed, read_export, run_cli, score
from fixtures.market.formats import relative_date
from fixtures.market.render import render
from fixtures.market.render_bazaar import category_url, store_url
from fixtures.market.world import FEEDBACK_SHOWN
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from types import ModuleType

    from pipelines.store.embedded import EmbeddedMongo

MARKET = "bazaar"


@pytest.fixture(scope="module")
def crawled(
    mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """Days 1 and 2 crawled by the CLI: each run's export and the requests the server saw."""
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"bazaar_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path_factory.mktemp("home")),
    }
    runs = []
    with FixtureServer(market=MARKET, day=1) as server:
        for day in (1, 2):
            server.set_day(day)
            before = server.requests_served
            run_cli("crawl", MARKET, "--mirror", server.url, env=env)
            requests = server.requests_served - before
            runs.append(
                {"export": read_export(run_cli("export", MARKET, env=env)), "requests": requests}
            )
    return runs


def test_the_market_has_the_variations_it_is_meant_to_test() -> None:
    world = truth(MARKET, 1)
    listings = world["listings"]
    currencies = [t["price"]["currency"] for t in listings]
    assert set(currencies) == {"USD", "BTC"}
    assert currencies.count("USD") > 3 * currencies.count("BTC")  # USD first
    for t in listings:  # the other currency's estimate beside every price
        assert t["price_hint"]["currency"] == {"USD": "BTC", "BTC": "USD"}[t["price"]["currency"]]
    destinations = {part for t in listings for part in t["ships_to_text"].split(", ")}
    assert {"Domestic", "EU only", "Worldwide", "Switzerland"} <= destinations
    assert {"EU"} < {code for t in listings for code in t["ships_to"]}
    assert {t["in_stock"] for t in listings} == {True, False}
    listed = [t["listed_text"] for t in listings]
    assert any(re.fullmatch(r"Listed (\d+ days ago|today|yesterday)", t) for t in listed)
    assert any(re.fullmatch(r"Listed \d+ \w{3} \d{4}", t) for t in listed)
    assert any(t["sales"] >= 1000 and "," in t["sales_text"] for t in listings)
    assert (
        {t["escrow"] for t in listings}
        == {t["finalize_early"] for t in listings}
        == {
            True,
            False,
        }
    )
    assert {len(t["shipping_options"]) for t in listings} >= {1, 2, 3}
    quantities = {t["quantity_text"] for t in listings}
    assert {"1 copy", "5 copies"} <= quantities and any(q.endswith(" pcs") for q in quantities)
    assert {v["rating_text"][:6] for v in world["vendors"]} == {"Trust "}
    assert {v["rating_scale"] for v in world["vendors"]} == {"100"}


@pytest.mark.parametrize("module", [formats_bazaar, render_bazaar])
def test_the_display_strings_are_as_documented(module: ModuleType) -> None:
    assert doctest.testmod(module).failed == 0


def test_no_page_shows_a_rate_and_each_listing_has_two_urls() -> None:
    world = build_world(MARKET, 1)
    listing = world.listings[min(world.listings)]
    from_category = render(world, category_url(listing))
    from_store = render(world, store_url(listing))
    assert from_category == from_store and from_category[0] == 200
    assert category_url(listing) in render(world, f"/browse/{listing.category}")[1]
    assert store_url(listing) in render(world, f"/store/{listing.vendor_id}")[1]
    for target in ("/", "/stores", f"/browse/{listing.category}", store_url(listing)):
        html = render(world, target)[1]
        assert not re.search(r"1 (BTC|XMR|USD) =|(BTC|XMR)/USD|rates?:", html, re.I), target


@pytest.mark.parametrize("day", [1, 2])
def test_crawl_matches_ground_truth(crawled: list[dict[str, Any]], day: int) -> None:
    export = crawled[day - 1]["export"]
    assert export["run"]["status"] == "complete", export["run"]["reasons"]
    data, counts = truth(MARKET, day), export["run"]["counts"]
    assert counts["expected_listings"] == len(data["listings"])  # "100 listings" was read
    assert counts["expected_vendors"] == len(data["vendors"])
    result = score(MARKET, day, export)
    assert result.perfect, result.report(f"{MARKET} day {day}")
    for name in ("listing.price_hint", "listing.shipping_options", "listing.sales_text"):
        assert result.fields[name][1] == len(data["listings"]), name
    assert result.fields["feedback.rating_text"][1] > 100
    # "Trust 94%" states its scale: read out of 100 whatever the source's default (5)
    assert {Decimal(v["rating"]["scale"]) for v in export["vendor"].values()} == {Decimal(100)}


@pytest.mark.parametrize("day", [1, 2])
def test_each_listing_is_fetched_once_per_run(crawled: list[dict[str, Any]], day: int) -> None:
    """Linked twice (category and store), fetched once: the key is read from the URL."""
    run = crawled[day - 1]
    counts = run["export"]["run"]["counts"]
    assert counts["pages_by_state"]["listing"] == len(truth(MARKET, day)["listings"])
    assert counts["listing_links"] == len(truth(MARKET, day)["listings"])
    assert run["requests"] == counts["pages"], "a request the run did not archive"


@pytest.mark.parametrize("day", [1, 2])
def test_review_dates_keep_the_text_shown(crawled: list[dict[str, Any]], day: int) -> None:
    """ "3 days ago" is stored as the page said it, on the day the review was first seen."""
    shown: dict[tuple[str, str, str], set[str]] = {}
    for seen in range(1, day + 1):
        world = build_world(MARKET, seen)
        for listing in world.listings.values():
            for entry in listing.feedback[:FEEDBACK_SHOWN]:
                text = relative_date(entry.date, entry.hour, world.date)
                shown.setdefault((listing.listing_id, entry.buyer, entry.text), set()).add(text)
    stored = crawled[day - 1]["export"]["feedback"]
    assert len(stored) > 100
    for entry in stored:
        assert entry["date_text"] in shown[(entry["listing_key"], entry["buyer"], entry["text"])]


def test_day_two_changes_are_the_true_changes(crawled: list[dict[str, Any]]) -> None:
    changes = truth(MARKET, 2)["changes"]
    new, changed = new_and_changed(crawled[1]["export"])
    assert new == changes["listings_new"]
    assert changed == changes["listings_changed"]


def test_the_hint_moves_with_the_rate_without_new_versions(
    crawled: list[dict[str, Any]],
) -> None:
    """The estimate beside the price is kept per run as displayed, not as versioned content."""
    first, second = (run["export"]["listing"] for run in crawled)
    unchanged = [key for key, line in second.items() if line["version"] == 1 and key in first]
    assert len(unchanged) > 50
    moved = [k for k in unchanged if first[k]["price_hint"] != second[k]["price_hint"]]
    assert len(moved) == len(unchanged)


@pytest.mark.parametrize("day", [1, 2])
def test_a_bitcoin_price_is_converted_at_the_rate_its_hint_implies(
    crawled: list[dict[str, Any]], day: int
) -> None:
    """No rate line anywhere: "0.00215 BTC ≈ $144.08" is the only rate a BTC price has."""
    export = crawled[day - 1]["export"]
    assert not export["run"]["rates"]
    in_btc = [line for line in export["listing"].values() if line["price"]["currency"] == "BTC"]
    assert len(in_btc) >= 5
    rate = Decimal(truth(MARKET, day)["rates"]["BTC"])
    for line in in_btc:
        assert line["usd"]["rate_source"] == "hint", line["key"]
        assert line["usd"]["amount"] == line["price_hint"]["amount"], line["key"]
        assert abs(Decimal(line["usd"]["rate"]) / rate - 1) < Decimal("0.01"), line["key"]
        for tier in line["tiers"]:
            assert tier["usd"]["rate"] == line["usd"]["rate"], line["key"]


def test_replay_cases_agree_with_the_generators_truth() -> None:
    """The saved bazaar pages (fixtures/pages/bazaar/) were recorded on day 1: true."""
    listings = {t["listing_id"]: t for t in truth(MARKET, 1)["listings"]}
    outputs = sorted((PAGES_DIR / MARKET / "listing").glob("*/output.json"))
    assert len(outputs) >= 2
    for output in outputs:
        (record,) = json.loads(output.read_text(encoding="utf-8"))["records"]
        expected, content = listings[record["key"]], record["content"]
        assert content["price"]["text"] == expected["price_text"], output
        assert content["ships_to"] == expected["ships_to"], output
        assert content["ships_to_text"] == expected["ships_to_text"], output
        assert content["listed"]["text"] == expected["listed_text"], output
        assert content["in_stock"] is expected["in_stock"], output
        assert content["sales"] == expected["sales"], output
        assert [o["price"]["amount"] for o in content["shipping_options"]] == [
            o["price"]["amount"] for o in expected["shipping_options"]
        ], output
