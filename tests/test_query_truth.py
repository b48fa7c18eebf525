"""The query library and its commands against the demo market's ground truth, days 1–3.

Everything is real: the fixture market over HTTP, the `darkarchive` CLI crawling it into
the secantusdb server, and the queries (library and CLI) reading that archive. Expected
answers come from the generator's truth (`fixtures/market/truth.py`), recomputed here
without the query code: as-of per day, price series, change sets, search, sales.
"""

from __future__ import annotations

import functools
import json
import os
import re
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
from subprocesses import run_cli

from fixtures.market.truth import truth
from fixtures.server import FixtureServer
from pipelines.query import Search, as_of, changes, price_series, sales, search, vendor_activity
from pipelines.query.runs import market_clock, resolve_run

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database

    from pipelines.store.embedded import EmbeddedMongo

DAYS = (1, 2, 3)
RUNS = {day: f"demo:{day:06d}" for day in DAYS}
CENT = Decimal("0.01")
TOLERANCE = Decimal("0.005")  # USD within 0.5 % of the truth
# Truth fields of a listing -> the content field that holds them in the archive.
FIELDS = {
    "title": "title",
    "category_path": "category_path",
    "description": "description",
    "vendor_id": "vendor",
    "ships_from": "ships_from",
    "ships_to": "ships_to",
    "quantity_text": "quantity",
    "price": "price",
    "tiers": "tiers",
}


@pytest.fixture(scope="module")
def archive(
    mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Database]]:
    """The demo market crawled by the CLI on days 1, 2 and 3; its env and database."""
    name = f"query_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp_path_factory.mktemp("home")),
    }
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    with FixtureServer(market="demo", day=1) as server:
        for day in DAYS:
            server.set_day(day)
            run_cli("crawl", "demo", "--mirror", server.url, env=env)
    yield env, client[name]
    client.drop_database(name)
    client.close()


def cli_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(run_cli(*args, "--format", "json", env=env).stdout)


@functools.cache
def day_truth(day: int) -> dict[str, Any]:
    """The truth of a day, built once (each `truth()` call is a deep copy)."""
    return truth("demo", day)


def listings(day: int) -> dict[str, dict[str, Any]]:
    return {t["listing_id"]: t for t in day_truth(day)["listings"]}


def close(usd: Decimal | str, expected: Decimal | str) -> bool:
    usd, expected = Decimal(usd), Decimal(expected)
    return abs(usd - expected) <= expected * TOLERANCE


# -- as of -----------------------------------------------------------------------------


@pytest.mark.parametrize("day", DAYS)
def test_as_of_each_run_is_that_days_market(archive: Any, day: int) -> None:
    _env, db = archive
    result = as_of(db, "demo", run=RUNS[day])
    expected = listings(day)
    assert result["run"]["run"] == RUNS[day]
    assert [e["key"] for e in result["entities"]] == sorted(expected)
    for entity in result["entities"]:
        true, content = expected[entity["key"]], entity["content"]
        assert content["title"] == true["title"]
        assert content["vendor"] == true["vendor_id"]
        assert content["price"]["amount"] == Decimal(true["price"]["amount"])
        assert content["price"]["currency"] == true["price"]["currency"]
        assert close(content["usd"]["amount"], true["price_usd"]), entity["key"]
        assert content["usd"]["run"] == RUNS[day]
    vendors = as_of(db, "demo", run=RUNS[day], kind="vendor")["entities"]
    true_vendors = {v["vendor_id"]: v for v in day_truth(day)["vendors"]}
    assert [v["key"] for v in vendors] == sorted(true_vendors)
    assert all(
        v["content"]["feedback_count"] == true_vendors[v["key"]]["feedback_count"] for v in vendors
    )


@pytest.mark.parametrize("day", DAYS)
def test_as_of_a_time_picks_the_run_started_before_it(archive: Any, day: int) -> None:
    env, db = archive
    started = resolve_run(db, "demo", run=RUNS[day]).started_at
    assert started is not None
    moment = (started + timedelta(milliseconds=1)).isoformat().replace("+00:00", "Z")
    result = cli_json(env, "asof", "demo", "--at", moment)
    assert result["run"]["run"] == RUNS[day]
    assert [e["key"] for e in result["entities"]] == sorted(listings(day))
    expected = listings(day)
    for entity in result["entities"]:  # JSON as the export writes it: decimals as strings
        assert entity["content"]["price"]["amount"] == expected[entity["key"]]["price"]["amount"]


def test_as_of_before_the_first_run_is_refused(archive: Any) -> None:
    env, _db = archive
    result = run_cli("asof", "demo", "--at", "2000-01-01", env=env, code=1).stderr
    assert "no run started at or before" in result


# -- price series ----------------------------------------------------------------------


def _series_sample() -> list[str]:
    """Listings that changed on day 2 or 3, one removed on day 2, and a few steady ones."""
    changed = day_truth(2)["changes"]["listings_changed"][:3]
    changed += day_truth(3)["changes"]["listings_changed"][:3]
    removed = day_truth(2)["changes"]["listings_removed"][:1]
    new = day_truth(3)["changes"]["listings_new"][:1]
    return sorted(set(changed + removed + new + sorted(listings(1))[:3]))


def test_price_series_follow_the_truth(archive: Any) -> None:
    env, db = archive
    for key in _series_sample():
        present = [day for day in DAYS if key in listings(day)]
        result = price_series(db, "demo", key)
        assert [p["run"] for p in result["series"]] == [RUNS[d] for d in present], key
        for point, day in zip(result["series"], present, strict=True):
            true = listings(day)[key]
            assert point["price"]["amount"] == Decimal(true["price"]["amount"]), key
            assert point["price"]["currency"] == true["price"]["currency"], key
            assert close(point["usd"]["amount"], true["price_usd"]), (key, day)
            assert point["usd"]["run"] == RUNS[day]
            rate = Decimal(day_truth(day)["rates"].get(true["price"]["currency"], "1"))
            assert point["usd"]["rate"] == rate
            assert point["usd"]["rate_source"] == ("identity" if rate == 1 else "market")
    key = _series_sample()[0]
    document = cli_json(env, "history", "demo", key)
    assert [p["run"] for p in document["series"]] == [RUNS[d] for d in DAYS if key in listings(d)]


# -- changes ---------------------------------------------------------------------------


def _true_changes(a: int, b: int) -> dict[str, Any]:
    before, after = listings(a), listings(b)
    changed = {
        key: {FIELDS[f] for f in FIELDS if before[key][f] != after[key][f]}
        for key in before.keys() & after.keys()
    }
    return {
        "appeared": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "changed": {k: fields for k, fields in changed.items() if fields},
    }


@pytest.mark.parametrize(("a", "b"), [(1, 2), (2, 3), (1, 3)])
def test_changes_are_exactly_the_true_changes(archive: Any, a: int, b: int) -> None:
    env, db = archive
    expected = _true_changes(a, b)
    result = changes(db, "demo", RUNS[a], RUNS[b])
    appeared = sorted(e["key"] for e in result["new"] + result["relisted"])
    assert appeared == expected["appeared"]
    seen_before = {k for day in DAYS if day <= a for k in listings(day)}
    assert {e["key"] for e in result["relisted"]} == set(expected["appeared"]) & seen_before
    assert [e["key"] for e in result["delisted"]] == expected["removed"]
    assert {c["key"] for c in result["changed"]} == set(expected["changed"])
    for change in result["changed"]:
        reported = set(change["fields"]) & set(FIELDS.values())
        assert reported == expected["changed"][change["key"]], change["key"]
    if (a, b) == (1, 2):
        assert appeared == day_truth(2)["changes"]["listings_new"]
        document = cli_json(env, "changes", "demo", "1", "2")
        assert [e["key"] for e in document["delisted"]] == expected["removed"]
        assert sorted(c["key"] for c in document["changed"]) == sorted(expected["changed"])


def test_vendor_changes_are_the_true_changes(archive: Any) -> None:
    _env, db = archive
    result = changes(db, "demo", RUNS[2], RUNS[3], kind="vendor")
    assert sorted(c["key"] for c in result["changed"]) == day_truth(3)["changes"]["vendors_changed"]
    assert result["new"] == result["delisted"] == []


# -- search ----------------------------------------------------------------------------


def _text(listing: dict[str, Any]) -> str:
    parts = [listing["title"], listing["description"], listing["vendor_id"]]
    return " ".join(parts + listing["category_path"])


def _has_words(listing: dict[str, Any], *words: str) -> bool:
    return all(re.search(rf"\b{w}\b", _text(listing), re.IGNORECASE) for w in words)


def _title_words(day: int) -> list[str]:
    """A rare, a middling and a common title word of the day."""
    counts = Counter(
        w.lower() for t in listings(day).values() for w in re.findall(r"[A-Za-z]{3,}", t["title"])
    )
    ranked = [w for w, _ in counts.most_common()]
    return [ranked[-1], ranked[len(ranked) // 2], ranked[0]]


@pytest.mark.parametrize("day", DAYS)
def test_search_words_find_every_true_listing_and_no_other(archive: Any, day: int) -> None:
    _env, db = archive
    current = day == DAYS[-1]
    for word in _title_words(day):
        query = Search(text=word, source="demo", run=None if current else RUNS[day])
        found = [r["key"] for r in search(db, query)["results"]]
        expected = sorted(k for k, t in listings(day).items() if _has_words(t, word))
        assert found == expected, word
        in_title = {
            k for k, t in listings(day).items() if re.search(rf"\b{word}\b", t["title"], re.I)
        }
        assert in_title <= set(found), word


def test_search_several_words_and_accents(archive: Any) -> None:
    _env, db = archive
    _rare, middle, _common = _title_words(3)
    found = [r["key"] for r in search(db, Search(text=f"{middle.upper()} kush"))["results"]]
    assert found == sorted(k for k, t in listings(3).items() if _has_words(t, middle, "kush"))
    accented = middle.replace("a", "á").replace("e", "é")
    again = [r["key"] for r in search(db, Search(text=f"{accented} kush"))["results"]]
    assert again == found


def _filters() -> list[tuple[dict[str, Any], Any]]:
    vendor = day_truth(3)["listings"][0]["vendor_id"]
    return [
        ({"vendor": vendor}, lambda t: t["vendor_id"] == vendor),
        ({"category": "cannabis"}, lambda t: "Cannabis" in t["category_path"]),
        ({"ships_from": "NL"}, lambda t: t["ships_from"] == "NL"),
        ({"ships_to": "DE"}, lambda t: "DE" in t["ships_to"] or "*" in t["ships_to"]),
        (
            {"min_usd": Decimal("50.005"), "max_usd": Decimal("200.005")},
            lambda t: Decimal("50.005") <= Decimal(t["price_usd"]) <= Decimal("200.005"),
        ),
        (
            {"category": "Cannabis", "ships_to": "GB", "max_usd": Decimal("100.005")},
            lambda t: (
                "Cannabis" in t["category_path"]
                and ("GB" in t["ships_to"] or "*" in t["ships_to"])
                and Decimal(t["price_usd"]) <= Decimal("100.005")
            ),
        ),
    ]


@pytest.mark.parametrize(("criteria", "holds"), _filters())
def test_search_filters_match_the_truth(archive: Any, criteria: dict[str, Any], holds: Any) -> None:
    _env, db = archive
    found = [r["key"] for r in search(db, Search(**criteria))["results"]]
    assert found == sorted(k for k, t in listings(3).items() if holds(t))
    assert found, criteria


def test_search_price_per_unit_and_cli(archive: Any) -> None:
    env, db = archive
    per_unit = {
        e["key"]: e["content"]["price_per_unit"]
        for e in as_of(db, "demo", run=RUNS[3])["entities"]
        if e["content"].get("price_per_unit")
    }
    rates = {k: Decimal(v) for k, v in day_truth(3)["rates"].items()}
    expected = sorted(
        key
        for key, ppu in per_unit.items()
        if (ppu["amount"] * rates.get(ppu["currency"], Decimal(1))).quantize(CENT, ROUND_HALF_EVEN)
        <= Decimal("10")
    )
    document = cli_json(env, "search", "--source", "demo", "--max-usd-per-unit", "10")
    assert [r["key"] for r in document["results"]] == expected
    assert all(Decimal(r["usd_per_unit"]["amount"]) <= 10 for r in document["results"])


# -- sales -----------------------------------------------------------------------------


def _noon(day: int) -> datetime:
    """The fixture server's clock during a run: noon UTC of the market's date."""
    return datetime.combine(date.fromisoformat(day_truth(day)["date"]), time(12), UTC)


def _true_sales() -> tuple[dict[str, Counter[str]], dict[str, Decimal]]:
    """Each distinct feedback entry shown on any day, priced from the truth on the last
    day whose noon is at or before it was left (else the listing's first day)."""
    entries = _distinct_feedback()
    counts: dict[str, Counter[str]] = {"vendor": Counter(), "listing": Counter()}
    usd: dict[str, Decimal] = defaultdict(Decimal)
    for (key, *_rest, when, hour), n in entries.items():
        moment = _left_at(when, hour)
        present = [d for d in DAYS if key in listings(d)]
        before = [d for d in present if _noon(d) <= moment]
        day = before[-1] if before else present[0]
        listing = listings(day)[key]
        counts["vendor"][listing["vendor_id"]] += n
        counts["listing"][key] += n
        usd[listing["vendor_id"]] += n * Decimal(listing["price_usd"])
        usd[key] += n * Decimal(listing["price_usd"])
    return counts, usd


def test_sales_estimates_match_the_truth(archive: Any) -> None:
    env, db = archive
    assert [market_clock(db, resolve_run(db, "demo", run=RUNS[d])) for d in DAYS] == [
        _noon(d) for d in DAYS
    ]
    counts, usd = _true_sales()
    for by in ("vendor", "listing"):
        result = sales(db, "demo", by=by)
        assert "Soska & Christin" in result["method"] and result["caveats"]
        assert {r[by]: r["feedback"] for r in result["rows"]} == dict(counts[by])
        for row in result["rows"]:
            assert close(row["usd"], usd[row[by]]), row
        assert result["totals"]["unpriced"] == 0
    document = cli_json(env, "sales", "demo", "--by", "vendor")
    assert {r["vendor"]: r["feedback"] for r in document["rows"]} == dict(counts["vendor"])
    assert "lower bound" in " ".join(document["caveats"])


def test_sales_between_dates_count_only_feedback_left_then(archive: Any) -> None:
    _env, db = archive
    since, until = _noon(1), _noon(3)
    result = sales(db, "demo", by="listing", since=since, until=until)
    expected: Counter[str] = Counter()
    for (key, *_rest, when, hour), n in _distinct_feedback().items():
        moment = _left_at(when, hour)
        if since <= moment < until:
            expected[key] += n
    assert {r["listing"]: r["feedback"] for r in result["rows"]} == dict(expected)
    assert expected


def _left_at(when: str, hour: int | None) -> datetime:
    """When the truth says a feedback entry was left."""
    return datetime.fromisoformat(when).replace(tzinfo=UTC) + timedelta(hours=hour or 0)


def _distinct_feedback() -> Counter[tuple[Any, ...]]:
    entries: Counter[tuple[Any, ...]] = Counter()
    for day in DAYS:
        shown = Counter(
            (key, fb["buyer"], fb["rating"], fb["text"], fb["date"], fb.get("hour"))
            for key, listing in listings(day).items()
            for fb in listing["feedback"]
        )
        for identity, n in shown.items():
            entries[identity] = max(entries[identity], n)
    return entries


# -- vendors ---------------------------------------------------------------------------


def test_vendor_activity_lists_every_listing_it_ever_had(archive: Any) -> None:
    _env, db = archive
    vendor = day_truth(3)["vendors"][0]["vendor_id"]
    result = vendor_activity(db, "demo", vendor)
    ever = {k for d in DAYS for k, t in listings(d).items() if t["vendor_id"] == vendor}
    assert {entry["key"] for entry in result["listings"]} == ever
    now = {k for k, t in listings(3).items() if t["vendor_id"] == vendor}
    assert {entry["key"] for entry in result["listings"] if entry["listed"]} == now
    assert [p["feedback_count"] for p in result["profile"]][-1] == next(
        v["feedback_count"] for v in day_truth(3)["vendors"] if v["vendor_id"] == vendor
    )
    assert sum(result["feedback_by_month"].values()) == sum(
        e["feedback"] for e in result["listings"]
    )
