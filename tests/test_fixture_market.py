"""The synthetic fixture market: deterministic, evolving plausibly, served as its truth says."""

from __future__ import annotations

import datetime as dt
import re
import urllib.error
import urllib.request
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from bs4 import BeautifulSoup

from fixtures.market import MARKETS, build_world, truth
from fixtures.market.countries import COUNTRY_NAMES
from fixtures.market.evolve import evolve
from fixtures.market.formats import relative_date
from fixtures.market.generate import generate_world
from fixtures.market.render import PAGE_SIZE, render
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from collections.abc import Iterator


def _get(url: str) -> tuple[int, dict[str, str], BeautifulSoup]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), _soup(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), _soup(error.read())


def _price(text: str) -> dict[str, str]:
    amount, currency = text.split()
    return {"amount": amount, "currency": currency}


def _soup(body: bytes) -> BeautifulSoup:
    return BeautifulSoup(body.decode("utf-8"), "html.parser")


@pytest.fixture(scope="module")
def server() -> Iterator[FixtureServer]:
    with FixtureServer(market="demo", day=1) as running:
        yield running


@pytest.fixture
def day1_server(server: FixtureServer) -> FixtureServer:
    server.set_day(1)
    return server


def test_markets_listed() -> None:
    assert "demo" in MARKETS


def test_generation_and_evolution_are_deterministic() -> None:
    first, second = generate_world("demo"), generate_world("demo")
    assert first == second
    assert evolve(first) == evolve(second)
    assert evolve(first) == build_world("demo", 2)


def test_day_one_size_and_shape() -> None:
    world = build_world("demo", 1)
    data = truth("demo", 1)
    assert len(data["listings"]) >= 300
    assert len(data["vendors"]) == 30
    assert data["date"] == "2026-03-01"
    assert data["rates"] == {"BTC": "67012.50", "XMR": "162.30"}
    assert all(not value for value in data["changes"].values())
    tops = world.top_categories()
    assert len(tops) == 3
    depths = {len(cat.path) for cat in world.categories.values()}
    assert max(depths) == 3
    for listing in world.listings.values():
        assert world.categories[listing.category].is_leaf
    assert sum(data["counts"].values()) == len(data["listings"])
    assert max(data["counts"].values()) > 2 * PAGE_SIZE  # some categories paginate
    ids = [item["listing_id"] for item in data["listings"]]
    assert all(re.fullmatch(r"l\d{5}", listing_id) for listing_id in ids)
    assert len({v["name"] for v in data["vendors"]}) == 30


def test_truth_values_are_consistent() -> None:
    data = truth("demo", 1)
    rates = {c: Decimal(r) for c, r in data["rates"].items()}
    currencies = set()
    for item in data["listings"]:
        amount, currency = Decimal(item["price"]["amount"]), item["price"]["currency"]
        currencies.add(currency)
        places = {"BTC": 8, "XMR": 6}[currency]
        assert -amount.as_tuple().exponent == places
        expected = (amount * rates[currency]).quantize(Decimal("0.01"))
        assert abs(Decimal(item["price_usd"]) - expected) <= Decimal("0.01")
        assert 2 <= item["description"].count("\n\n") + 1 <= 3
        assert len(item["feedback"]) <= 8
        dates = [entry["date"] for entry in item["feedback"]]
        assert dates == sorted(dates, reverse=True)
        assert all(re.fullmatch(r"[a-z]\*\*\*[a-z0-9]", e["buyer"]) for e in item["feedback"])
        assert all(t["price"]["currency"] == currency for t in item["tiers"])
        assert len(item["tiers"]) <= 3
    assert currencies == {"BTC", "XMR"}
    assert any(item["tiers"] for item in data["listings"])
    for vendor in data["vendors"]:
        assert re.fullmatch(r"[0-5]\.\d\d", vendor["rating"])
        assert re.fullmatch(r"[0-9A-F]{40}", vendor["pgp_fingerprint"])
        dt.date.fromisoformat(vendor["join_date"])


def test_evolution_day_two_matches_changes() -> None:
    before, after = truth("demo", 1), truth("demo", 2)
    changes = after["changes"]
    old = {item["listing_id"]: item for item in before["listings"]}
    new = {item["listing_id"]: item for item in after["listings"]}
    n = len(old)
    assert set(changes["listings_removed"]) == set(old) - set(new)
    assert set(changes["listings_new"]) == set(new) - set(old)
    assert 0.015 * n <= len(changes["listings_removed"]) <= 0.05 * n
    assert 0.015 * n <= len(changes["listings_new"]) <= 0.05 * n
    assert min(changes["listings_new"]) > max(old)  # new ids never reuse old ones
    repriced = [i for i in set(old) & set(new) if old[i]["price"] != new[i]["price"]]
    assert 0.03 * n <= len(repriced) <= 0.08 * n
    assert set(repriced) <= set(changes["listings_changed"])
    assert len(changes["listings_changed"]) <= 0.1 * n
    with_feedback = [
        i for i in set(old) & set(new) if new[i]["feedback"][:1] != old[i]["feedback"][:1]
    ]
    assert 0.06 * n <= len(with_feedback) <= 0.15 * n
    assert changes["vendors_changed"]
    old_vendors = {v["vendor_id"]: v for v in before["vendors"]}
    edited = [
        v["vendor_id"]
        for v in after["vendors"]
        if (v["bio"], v["ships_to"])
        != (old_vendors[v["vendor_id"]]["bio"], old_vendors[v["vendor_id"]]["ships_to"])
    ]
    assert 1 <= len(edited) <= 2
    for currency, rate in after["rates"].items():
        drift = Decimal(rate) / Decimal(before["rates"][currency]) - 1
        assert abs(drift) <= Decimal("0.05")


def test_removed_listings_never_come_back() -> None:
    seen_removed: set[str] = set()
    for day in range(2, 6):
        data = truth("demo", day)
        current = {item["listing_id"] for item in data["listings"]}
        assert not current & seen_removed
        seen_removed |= set(data["changes"]["listings_removed"])


@pytest.mark.parametrize(
    ("when", "hour", "expected"),
    [
        (dt.date(2026, 3, 10), 2, "10 hours ago"),
        (dt.date(2026, 3, 9), 20, "yesterday"),
        (dt.date(2026, 3, 8), 1, "2 days ago"),
        (dt.date(2026, 2, 25), 1, "13 days ago"),
        (dt.date(2026, 2, 24), 1, "2 weeks ago"),
        (dt.date(2026, 1, 14), 1, "7 weeks ago"),  # 55 days
        (dt.date(2026, 1, 13), 1, "13 Jan 2026"),  # 56 days
        (dt.date(2025, 6, 3), 1, "3 Jun 2025"),
    ],
)
def test_relative_feedback_dates(when: dt.date, hour: int, expected: str) -> None:
    assert relative_date(when, hour, dt.date(2026, 3, 10)) == expected


def test_every_listing_reachable_through_category_pages() -> None:
    world = build_world("demo", 1)
    data = truth("demo", 1)
    found: set[str] = set()
    for slug, count in data["counts"].items():
        page, seen = 1, 0
        while True:
            status, html = render(world, f"/category/{slug}?page={page}")
            assert status == 200
            ids = re.findall(r'class="listing-link" href="/listing/(l\d{5})"', html)
            seen += len(ids)
            found.update(ids)
            if 'rel="next"' not in html:
                break
            page += 1
        assert seen == count
    assert found == {item["listing_id"] for item in data["listings"]}


def test_category_page_over_http(day1_server: FixtureServer) -> None:
    data = truth("demo", 1)
    slug = max(data["counts"], key=data["counts"].get)
    status, headers, soup = _get(f"{day1_server.url}/category/{slug}?page=2")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    total = data["counts"][slug]
    assert soup.select_one("p.result-count").text == f"Showing 21–40 of {total} listings"
    cards = soup.select("div.listing-card")
    assert len(cards) == PAGE_SIZE
    listings = {item["listing_id"]: item for item in data["listings"]}
    vendors = {v["vendor_id"]: v for v in data["vendors"]}
    for card in cards:
        listing_id = card.select_one("a.listing-link")["href"].rsplit("/", 1)[1]
        item = listings[listing_id]
        assert card.select_one("a.listing-link").text == item["title"]
        price = item["price"]
        assert card.select_one("span.card-price").text == f"{price['amount']} {price['currency']}"
        assert card.select_one("a.vendor-link").text == vendors[item["vendor_id"]]["name"]
    assert soup.select_one("a.next")["href"] == f"/category/{slug}?page=3"
    rates = soup.select("header ul.rates li.rate")
    assert [r["data-currency"] for r in rates] == ["BTC", "XMR"]
    assert rates[0].text == "1 BTC = $67,012.50"
    assert len(soup.select("nav.categories a.category")) == len(data["counts"])


def test_parent_category_shows_no_listings(day1_server: FixtureServer) -> None:
    status, _, soup = _get(f"{day1_server.url}/category/cannabis")
    assert status == 200
    assert soup.select_one("p.result-count").text == "Showing 0–0 of 0 listings"
    assert soup.select_one("a.next") is None


def test_listing_page_over_http(day1_server: FixtureServer) -> None:
    data = truth("demo", 1)
    item = next(i for i in data["listings"] if i["tiers"] and len(i["feedback"]) >= 2)
    status, _, soup = _get(f"{day1_server.url}/listing/{item['listing_id']}")
    assert status == 200
    assert soup.select_one("h1.listing-title").text == item["title"]
    crumbs = [a.text for a in soup.select("nav.breadcrumb a")]
    assert crumbs == ["Home", *item["category_path"]]
    price = item["price"]
    assert soup.select_one("span.price-primary").text == f"{price['amount']} {price['currency']}"
    assert soup.select_one("span.price-usd").text == f"≈ ${Decimal(item['price_usd']):,.2f}"
    assert soup.select_one("span.qty").text == item["quantity_text"]
    tiers = soup.select("table.tiers tr.tier")
    assert [t.select_one("td.tier-qty").text for t in tiers] == [
        t["quantity_text"] for t in item["tiers"]
    ]
    paragraphs = [p.text for p in soup.select("div.description p")]
    assert "\n\n".join(paragraphs) == item["description"]
    entries = soup.select("section.feedback div.fb")
    assert [e.select_one("p.fb-text").text for e in entries] == [
        f["text"] for f in item["feedback"]
    ]
    assert [e.select_one("span.fb-buyer").text for e in entries] == [
        f["buyer"] for f in item["feedback"]
    ]
    vendor = next(v for v in data["vendors"] if v["vendor_id"] == item["vendor_id"])
    assert soup.select_one("div.sold-by a.vendor-link").text == vendor["name"]


def test_vendor_page_over_http(day1_server: FixtureServer) -> None:
    data = truth("demo", 1)
    vendor = data["vendors"][0]
    status, _, soup = _get(f"{day1_server.url}/vendor/{vendor['vendor_id']}")
    assert status == 200
    assert soup.select_one("h1.vendor-name").text == vendor["name"]
    assert soup.select_one("span.vendor-rating").text == f"{vendor['rating']}/5"
    assert soup.select_one("span.feedback-count").text == f"{vendor['feedback_count']:,} ratings"
    assert soup.select_one("div.vendor-bio").text == vendor["bio"]
    assert soup.select_one("pre.pgp-key").text == vendor["pgp_key"]
    own = {i["listing_id"] for i in data["listings"] if i["vendor_id"] == vendor["vendor_id"]}
    links = soup.select("ul.vendor-listings a.listing-link")
    assert {a["href"].rsplit("/", 1)[1] for a in links} == own


def test_day_change_over_http(server: FixtureServer) -> None:
    server.set_day(1)
    removed = truth("demo", 2)["changes"]["listings_removed"][0]
    status, headers, _ = _get(f"{server.url}/listing/{removed}")
    assert status == 200
    assert headers["Date"] == "Sun, 01 Mar 2026 12:00:00 GMT"
    server.set_day(2)
    status, headers, soup = _get(f"{server.url}/listing/{removed}")
    assert status == 404
    assert headers["Date"] == "Mon, 02 Mar 2026 12:00:00 GMT"
    assert "Not found" in soup.text
    server.set_day(1)


@pytest.mark.parametrize(
    "path", ["/nope", "/listing/l00000", "/vendor/nobody", "/category/cannabis?page=9"]
)
def test_unknown_paths_are_404(day1_server: FixtureServer, path: str) -> None:
    status, _, _ = _get(day1_server.url + path)
    assert status == 404


@pytest.mark.parametrize("day", [1, 2])
def test_truth_describes_every_page_exactly(day: int) -> None:
    """Parse every listing and vendor page the way a crawler would and compare with truth."""
    world = build_world("demo", day)
    data = truth("demo", day)
    codes = {name: code for code, name in COUNTRY_NAMES.items()}

    def countries(text: str) -> list[str]:
        return ["*"] if text == "Worldwide" else [codes[name] for name in text.split(", ")]

    for item in data["listings"]:
        status, html = render(world, f"/listing/{item['listing_id']}")
        assert status == 200
        soup = _soup(html.encode())
        primary = soup.select_one("span.price-primary").text
        seen = {
            "title": soup.select_one("h1.listing-title").text,
            "category_path": [a.text for a in soup.select("nav.breadcrumb a")][1:],
            "vendor_id": soup.select_one("div.sold-by a")["href"].rsplit("/", 1)[1],
            "price": _price(primary),
            "price_usd": soup.select_one("span.price-usd").text.removeprefix("≈ $"),
            "quantity_text": soup.select_one("span.qty").text,
            "ships_from": countries(soup.select_one("dd.ships-from").text)[0],
            "ships_to": countries(soup.select_one("dd.ships-to").text),
            "description": "\n\n".join(p.text for p in soup.select("div.description p")),
            "tiers": [
                {
                    "quantity_text": row.select_one("td.tier-qty").text,
                    "price": _price(row.select_one("td.tier-price").text),
                }
                for row in soup.select("tr.tier")
            ],
            "feedback": [
                (int(fb.select_one("span.fb-rating").text[0]), fb.select_one("p.fb-text").text)
                for fb in soup.select("div.fb")
            ],
        }
        expected = {key: item[key] for key in seen}
        expected["price_usd"] = f"{Decimal(item['price_usd']):,.2f}"
        expected["feedback"] = [(f["rating"], f["text"]) for f in item["feedback"]]
        assert seen == expected, item["listing_id"]

    for vendor in data["vendors"]:
        status, html = render(world, f"/vendor/{vendor['vendor_id']}")
        assert status == 200
        soup = _soup(html.encode())
        joined = soup.select_one("span.joined").text.removeprefix("Member since ")
        assert dt.datetime.strptime(joined, "%d %b %Y").date().isoformat() == vendor["join_date"]
        assert soup.select_one("span.vendor-rating").text == f"{vendor['rating']}/5"
        assert countries(soup.select_one("dd.ships-to").text) == vendor["ships_to"]
        assert countries(soup.select_one("dd.ships-from").text) == [vendor["ships_from"]]
