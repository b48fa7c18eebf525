"""The "rynok" market, defined by config/sources/rynok.yaml alone, crawled against truth.

A Russian market in Cyrillic (windows-1251 on some pages): rubles with no-break spaces and
comma decimals, its own unit words, Russian relative dates in Moscow time, delivery by city,
out-of-stock pages without a price, rates on a page of their own ("1 USD = 92,50 ₽"), and a
fresh tracking token in every link. The same CLI, spider and normalisers as every other
market: the YAML's `normalise.values`, `urls.query_params`, `rates_page` and
`normalise.timezone` carry the differences. Day 1 and day 2 are crawled into the real
MongoDB wire server and every field, raw texts included, is scored against the generator's
truth (fixtures/market/accuracy.py, also used by bench/accuracy.py).
"""

from __future__ import annotations

import json
import re
import urllib.request
from decimal import Decimal
from typing import Any

import pytest

from crawler.replay import PAGES_DIR
from fixtures.market import build_world, truth
from fixtures.market.accuracy import new_and_changed, score
from fixtures.market.formats_rynok import NBSP, THIN
from fixtures.market.render import render
from fixtures.server import FixtureServer

MARKET = "rynok"  # the `exports` fixture (tests/conftest.py) crawls it on days 1 and 2


def test_the_market_has_the_variations_it_is_meant_to_test() -> None:
    data = truth("rynok", 1)
    listings = data["listings"]
    shown = [t for t in listings if t["in_stock"]]
    assert {t["price"]["currency"] for t in shown} == {"RUB"}
    assert any(Decimal(t["price"]["amount"]) >= 1000 for t in shown)  # a thousands space
    assert any(THIN in t["price_text"] and "," in t["price_text"] for t in shown)
    out = [t for t in listings if not t["in_stock"]]
    assert out and all(t["price"] is None and t["price_text"] is None for t in out)
    texts = " ".join(t["quantity_text"] for t in listings)
    assert {"г", "мг", "мл", "шт"} <= set(texts.split())
    # delivery by city: more cities than countries, and a country's cities make one code
    cities = [(t["ships_to_text"].count(",") + 1, len(t["ships_to"])) for t in listings]
    assert any(shown > codes == 1 for shown, codes in cities)
    assert any(shown > codes > 1 for shown, codes in cities)
    assert any(NBSP in v["feedback_count_text"] for v in data["vendors"])
    # some feedback was left after 21:00 UTC: a day later on the market's Moscow clock
    world = build_world("rynok", 1)
    assert any(e.hour >= 21 for item in world.listings.values() for e in item.feedback[:8])
    changes = truth("rynok", 2)
    flipped = [
        t["listing_id"]
        for t in changes["listings"]
        if t["listing_id"] in {x["listing_id"] for x in listings}
        and t["in_stock"]
        != next(x for x in listings if x["listing_id"] == t["listing_id"])["in_stock"]
    ]
    assert flipped and set(flipped) <= set(changes["changes"]["listings_changed"])


def test_pages_carry_tracking_tokens_and_rates_only_on_the_rates_page() -> None:
    world = build_world("rynok", 1)
    listing = next(iter(sorted(world.listings)))
    first, second = render(world, f"/tovar/{listing}")[1], render(world, f"/tovar/{listing}")[1]
    hrefs = re.findall(r'href="([^"]+)"', first)
    assert hrefs and all(re.search(r"\?(.*&amp;)?sid=[0-9a-f]{8}&amp;from=\w+$", h) for h in hrefs)
    assert first != second  # a fresh token on every request
    pages = ["/", "/prodavcy", f"/tovar/{listing}", "/razdel/cannabis-edibles", "/rates"]
    with_rates = [p for p in pages if "1 USD = " in render(world, p)[1]]
    assert with_rates == ["/rates"]
    assert render(world, "/tovar/l99999?sid=x&from=y")[0] == 404


@pytest.mark.parametrize(
    ("path", "charset"),
    [
        ("/", "utf-8"),
        ("/tovar/{listing}?sid=anything&from=test", "utf-8"),
        ("/prodavec/{vendor}?sid=1&from=2", "windows-1251"),
        ("/rates", "windows-1251"),
    ],
)
def test_some_pages_are_windows_1251_and_say_so(path: str, charset: str) -> None:
    world = build_world("rynok", 1)
    target = path.format(listing=min(world.listings), vendor=min(world.vendors))
    with FixtureServer(market="rynok") as server, urllib.request.urlopen(server.url + target) as r:
        body = r.read()
        assert r.headers["Content-Type"] == f"text/html; charset={charset}"
    html = body.decode(charset)
    assert f'<meta charset="{charset}">' in html
    assert re.search("[а-я]", html)


@pytest.mark.parametrize("day", [1, 2])
def test_crawl_matches_ground_truth(exports: list[Any], day: int) -> None:
    export = exports[day - 1]
    assert export["run"]["status"] == "complete", export["run"]["reasons"]
    data, counts = truth("rynok", day), export["run"]["counts"]
    assert counts["expected_listings"] == len(data["listings"])  # "На рынке 100 объявлений"
    assert counts["expected_vendors"] == len(data["vendors"])
    # every listing is linked from its section, its vendor and its neighbours, under a new
    # token each time: fetched once all the same
    assert counts["pages_by_state"]["listing"] == len(data["listings"])
    result = score("rynok", day, export)
    assert result.perfect, result.report(f"rynok day {day}")
    assert result.fields["feedback.date"][1] > 100
    out = [key for key, line in export["listing"].items() if line["in_stock"] is False]
    assert out and all(export["listing"][key]["price"] is None for key in out)


def test_day_two_changes_are_the_true_changes(exports: list[Any]) -> None:
    changes = truth("rynok", 2)["changes"]
    new, changed = new_and_changed(exports[1])
    assert new == changes["listings_new"]
    assert changed == changes["listings_changed"]


def test_replay_cases_agree_with_the_generators_truth() -> None:
    """The saved rynok pages (fixtures/pages/rynok/) were recorded on day 1: true."""
    listings = {t["listing_id"]: t for t in truth("rynok", 1)["listings"]}
    outputs = sorted((PAGES_DIR / "rynok" / "listing").glob("*/output.json"))
    assert len(outputs) >= 2
    for output in outputs:
        (record,) = json.loads(output.read_text(encoding="utf-8"))["records"]
        expected, content = listings[record["key"]], record["content"]
        assert content["in_stock"] == expected["in_stock"], output
        assert (content["price"] or {}).get("text") == expected["price_text"], output
        assert content["quantity"]["text"] == expected["quantity_text"], output
        assert content["ships_to"] == expected["ships_to"], output
        assert content["ships_to_text"] == expected["ships_to_text"], output
