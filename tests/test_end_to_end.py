"""The demo market crawled on day 1 and day 2 into the real MongoDB wire server.

Everything here is real: the fixture market over HTTP on loopback, the `darkarchive` CLI
in its own process (Scrapy, pipelines), the secantusdb server, and the export command.
The archive is checked against the generator's ground truth for both days.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
from subprocesses import run_cli

from crawler.reparse import reparse_run
from crawler.sources.loader import load_source
from fixtures.market import truth
from fixtures.market.accuracy import read_export
from fixtures.server import FixtureServer
from pipelines.store.queries import delisted, entity_history

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pipelines.store.embedded import EmbeddedMongo


def _export(env: dict[str, str]) -> dict[str, Any]:
    return read_export(run_cli("export", "demo", env=env).stdout)


@pytest.fixture(scope="module")
def crawls(
    mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[dict[str, Any]], pymongo.database.Database]]:
    """Day 1, day 2, then day 2 again; the export of each run, and the database."""
    home: Path = tmp_path_factory.mktemp("home")
    name = f"e2e_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(home),
    }
    exports = []
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    with FixtureServer(market="demo", day=1) as server:
        for day in (1, 2, 2):
            server.set_day(day)
            run_cli("crawl", "demo", "--mirror", server.url, env=env)
            exports.append(_export(env))
    assert not (home / "mongo").exists(), "with MONGODB_URI set no embedded server may start"
    yield exports, client[name]
    client.drop_database(name)
    client.close()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _check_listing(line: dict[str, Any], expected: dict[str, Any]) -> None:
    key = expected["listing_id"]
    assert line["title"] == expected["title"], key
    assert line["category_path"] == expected["category_path"], key
    assert line["description"] == expected["description"], key
    assert line["vendor"] == expected["vendor_id"], key
    assert line["ships_from"] == expected["ships_from"], key
    assert line["ships_to"] == expected["ships_to"], key
    assert line["quantity"]["text"] == expected["quantity_text"], key
    assert _dec(line["price"]["amount"]) == Decimal(expected["price"]["amount"]), key
    assert line["price"]["currency"] == expected["price"]["currency"], key
    usd, true_usd = Decimal(line["usd"]["amount"]), Decimal(expected["price_usd"])
    assert abs(usd - true_usd) <= true_usd * Decimal("0.005"), (key, usd, true_usd)
    assert [t["quantity"]["text"] for t in line["tiers"]] == [
        t["quantity_text"] for t in expected["tiers"]
    ], key
    assert [(_dec(t["price"]["amount"]), t["price"]["currency"]) for t in line["tiers"]] == [
        (Decimal(t["price"]["amount"]), t["price"]["currency"]) for t in expected["tiers"]
    ], key


def _check_vendor(line: dict[str, Any], expected: dict[str, Any]) -> None:
    key = expected["vendor_id"]
    assert line["name"] == expected["name"], key
    rating = line["rating"]
    assert Decimal(rating["raw"]) == Decimal(expected["rating"]), key
    assert Decimal(rating["scale"]) == Decimal(expected["rating_scale"]), key
    true_value = Decimal(expected["rating"]) / Decimal(expected["rating_scale"])
    assert abs(Decimal(rating["value"]) - true_value) < Decimal("0.0001"), key
    assert line["feedback_count"] == expected["feedback_count"], key
    joined = expected["join_date"]
    assert line["joined"]["earliest"][:10] <= joined <= line["joined"]["latest"][:10], key
    assert line["ships_from"] == expected["ships_from"], key
    assert line["ships_to"] == expected["ships_to"], key
    assert line["bio"] == expected["bio"], key
    assert line["pgp_fingerprint"] == expected["pgp_fingerprint"], key


@pytest.mark.parametrize("day", [1, 2])
def test_archive_matches_ground_truth(crawls: Any, day: int) -> None:
    exports, _db = crawls
    export, world = exports[day - 1], truth("demo", day)
    assert export["run"]["status"] == "complete", export["run"]["reasons"]
    assert set(export["listing"]) == {t["listing_id"] for t in world["listings"]}
    assert set(export["vendor"]) == {t["vendor_id"] for t in world["vendors"]}
    for expected in world["listings"]:
        _check_listing(export["listing"][expected["listing_id"]], expected)
    for expected in world["vendors"]:
        _check_vendor(export["vendor"][expected["vendor_id"]], expected)


@pytest.mark.parametrize("day", [1, 2])
def test_feedback_matches_ground_truth_without_double_counting(crawls: Any, day: int) -> None:
    exports, _db = crawls
    export, world = exports[day - 1], truth("demo", day)
    archived: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    for entry in export["feedback"]:
        identity = (entry["listing_key"], entry["buyer"], Decimal(entry["rating"]), entry["text"])
        archived.setdefault(identity, []).append((entry["date_earliest"], entry["date_latest"]))
    # Everything shown on this day's pages is archived, each with an interval around its date.
    shown = 0
    for listing in world["listings"]:
        for fb in listing["feedback"]:
            identity = (listing["listing_id"], fb["buyer"], Decimal(fb["rating"]), fb["text"])
            day_start = datetime.fromisoformat(fb["date"]).replace(tzinfo=UTC)
            assert any(
                _instant(lo) < day_start + timedelta(days=1) and _instant(hi) > day_start
                for lo, hi in archived.get(identity, [])
            ), identity  # the archived interval [earliest, latest) lies on the true day
            shown += 1
    # Day 2 re-shows day 1's entries: the archive holds each sale once.
    all_seen = {
        (t["listing_id"], fb["buyer"], fb["rating"], fb["text"], fb["date"])
        for d in range(1, day + 1)
        for t in truth("demo", d)["listings"]
        for fb in t["feedback"]
    }
    assert len(export["feedback"]) == len(all_seen) >= shown


def test_day_two_versions_are_exactly_the_true_changes(crawls: Any) -> None:
    exports, db = crawls
    day2, changes = exports[1], truth("demo", 2)["changes"]
    run2 = day2["run"]["run"]
    changed = sorted(k for k, line in day2["listing"].items() if line["version"] > 1)
    assert changed == changes["listings_changed"]
    new = sorted(k for k, line in day2["listing"].items() if line["first_seen_run"] == run2)
    assert new == changes["listings_new"]
    assert sorted(delisted(db, "demo", run2)) == changes["listings_removed"]
    vendors_changed = sorted(k for k, line in day2["vendor"].items() if line["version"] > 1)
    assert vendors_changed == changes["vendors_changed"]
    # Counters move every day and are kept per run: each day's export has that day's count
    # (fixtures/market/accuracy.py scores it), and a moved count alone makes no version.
    day1 = exports[0]["vendor"]
    moved = [
        k
        for k, line in day2["vendor"].items()
        if line["version"] == 1 and line["feedback_count"] != day1[k]["feedback_count"]
    ]
    assert moved, "some vendor's feedback count moved without another change"
    total = len(truth("demo", 1)["listings"]) + len(changes["listings_new"])
    assert db.listing_versions.count_documents({}) == total + len(changes["listings_changed"])


def test_recrawl_of_an_unchanged_day_writes_no_version(crawls: Any) -> None:
    exports, db = crawls
    again = exports[2]
    changes = truth("demo", 2)["changes"]
    vendors = len(truth("demo", 1)["vendors"]) + len(changes["vendors_changed"])
    assert db.vendor_versions.count_documents({}) == vendors
    assert again["run"]["status"] == "complete"
    counts = again["run"]["counts"]
    for kind in ("listing", "vendor"):
        assert counts[kind]["new"] == 0 and counts[kind]["changed"] == 0, counts
    assert counts.get("feedback_new", 0) == 0
    first_run = exports[1]["run"]["run"]
    assert all(line["first_seen_run"] <= first_run for line in again["listing"].values())
    for key, line in again["listing"].items():
        assert _content(line) == _content(exports[1]["listing"][key]), key


def _content(line: dict[str, Any]) -> dict[str, Any]:
    """A listing line without what belongs to the run (fetch-time USD values, provenance)."""
    kept = {k: v for k, v in line.items() if k not in ("usd", "provenance")}
    kept["tiers"] = [{k: v for k, v in t.items() if k != "usd"} for t in line["tiers"]]
    return kept


def test_every_page_is_archived_with_provenance(crawls: Any) -> None:
    exports, db = crawls
    run1 = exports[0]["run"]["run"]
    pages = list(db.pages.find({"run": run1}))
    assert len(pages) == exports[0]["run"]["counts"]["pages"]
    line = next(iter(exports[0]["listing"].values()))
    provenance = line["provenance"]
    page = db.pages.find_one({"run": run1, "url": provenance["url"]})
    assert page is not None and page["sha256"] == provenance["page_sha256"]
    assert db.bodies.find_one({"_id": provenance["page_sha256"]}) is not None
    assert datetime.fromisoformat(provenance["fetched_at"].replace("Z", "+00:00"))


def test_history_of_a_changed_listing_gives_each_days_price(crawls: Any) -> None:
    """ "What did this listing cost then?" — one version per distinct content, bounded by runs."""
    exports, db = crawls
    run1, run2 = exports[0]["run"]["run"], exports[1]["run"]["run"]
    day1 = {t["listing_id"]: t for t in truth("demo", 1)["listings"]}
    day2 = {t["listing_id"]: t for t in truth("demo", 2)["listings"]}
    key = truth("demo", 2)["changes"]["listings_changed"][0]
    first, second = entity_history(db, "demo", "listing", key)
    assert (first["valid_from_run"], first["valid_to_run"], first["ended_by"]) == (
        run1,
        run2,
        "changed",
    )
    assert (second["valid_from_run"], second["valid_to_run"]) == (run2, None)
    assert first["valid_from"] < second["valid_from"]
    for version, world in ((first, day1), (second, day2)):
        assert version["content"]["price"]["amount"] == Decimal(world[key]["price"]["amount"])
        assert version["content"]["title"] == world[key]["title"]
    removed = truth("demo", 2)["changes"]["listings_removed"][0]
    (only,) = entity_history(db, "demo", "listing", removed)
    assert (only["valid_to_run"], only["ended_by"]) == (run2, "delisted")


def test_reparse_from_the_archive_alone_reproduces_the_run(crawls: Any) -> None:
    """The archived pages are enough: the same parser reads the same content, no refetch;
    a changed parser shows exactly which entities and fields it would change."""
    exports, db = crawls
    run1 = exports[0]["run"]["run"]
    demo = load_source("demo")
    report = reparse_run(db, demo, run1)
    assert (report.pages, report.same, report.differences, report.problems) == (401, 370, [], [])

    listing = demo.pages["listing"]
    title = listing.fields["title"].model_copy(update={"processors": ("strip", "upper")})
    shouting = listing.model_copy(update={"fields": {**listing.fields, "title": title}})
    changed = demo.model_copy(update={"pages": {**demo.pages, "listing": shouting}})
    report = reparse_run(db, changed, run1)
    assert report.same == 30
    assert len(report.differences) == 340
    assert {tuple(d["fields"]) for d in report.differences} == {("title",)}
