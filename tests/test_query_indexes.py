"""Every query the library sends is index-driven: timed against a `$natural` scan.

`explain()` is unreliable on SecantusDB, so the queries are captured as the library sends
them (pymongo command monitoring) on a synthetic archive of a few thousand versions, and
each is timed against the same filter forced to scan. Also: the text-index capability
check, and the backfill of search terms on versions archived before they existed.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
from pymongo import monitoring

from pipelines.query import (
    Search,
    as_of,
    changes,
    price_series,
    reindex,
    sales,
    search,
    vendor_activity,
)
from pipelines.store.archive import Archive
from pipelines.store.model import EntityObservation, Provenance
from pipelines.store.schema import ensure_text_index

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database

    from pipelines.store.embedded import EmbeddedMongo

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
LISTINGS, RUNS, NOISE = 200, 6, 8
TIMED = ("listing_versions", "feedback")
WORDS = ["kush", "haze", "tabs", "crystal", "blend", "dream"]
VENDORS = ["rapid-fjord", "lucid-thistle", "amber-marble", "quiet-otter"]


class Recorder(monitoring.CommandListener):
    """Keeps the filter of every read the library sends."""

    def __init__(self) -> None:
        self.reads: dict[str, tuple[str, dict[str, Any]]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.command_name == "find":
            query = command.get("filter", {})
        elif event.command_name == "aggregate" and command.get("pipeline"):
            query = command["pipeline"][0].get("$match", {})
        else:
            return
        collection = command[event.command_name]
        self.reads.setdefault(f"{collection} {query!r}", (collection, query))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _content(rnd: random.Random, index: int, price: Decimal) -> dict[str, Any]:
    word = WORDS[index % len(WORDS)]
    return {
        "title": f"Listing {index} {word.title()} - 1 g",
        "category_path": ["Cannabis" if index % 2 else "Pharmacy", "Flower"],
        "description": f"Fresh {word} every week.",
        "vendor": VENDORS[index % len(VENDORS)],
        "price": {"amount": price, "currency": "BTC", "text": f"{price} BTC"},
        "price_per_unit": {"amount": price, "currency": "BTC", "unit": "g"},
        "ships_from": "NL",
        "ships_to": ["DE", "FR"] if index % 3 else ["*"],
    }


def _build(db: Database) -> None:
    """200 listings over 6 complete runs (price changes, delistings, new listings, feedback),
    then the versions and feedback copied under 8 other sources, so a scan has work to do."""
    archive = Archive(db)
    archive.ensure_indexes()
    rnd = random.Random(7)
    prices = {i: Decimal(rnd.randint(100, 900)) / Decimal(100000) for i in range(LISTINGS)}
    alive = set(range(LISTINGS - 20))
    for day in range(RUNS):
        run = archive.open_run("big", parser_version="p1", started_at=T0 + timedelta(days=day))
        archive.record_rates(run, {"BTC": {"value": Decimal(60000 + day), "quote": "USD"}})
        if day:
            alive -= set(rnd.sample(sorted(alive), 4))
            alive |= set(range(LISTINGS - 20 + 4 * (day - 1), LISTINGS - 20 + 4 * day))
            for i in rnd.sample(sorted(alive), len(alive) // 3):
                prices[i] = prices[i] * Decimal("1.1")
        prov = Provenance("http://big.onion/l", "ab" * 32, T0 + timedelta(days=day), "p1")
        batch = [EntityObservation(f"k{i:04d}", _content(rnd, i, prices[i]), prov) for i in alive]
        archive.record_entities(run, "listing", batch)
        when = T0 + timedelta(days=day, hours=-5)
        entry = {"buyer": f"b{day}", "rating": 5, "text": "ok", "date_earliest": when}
        entry["date_latest"] = when + timedelta(hours=1)
        entries = [(f"k{i:04d}", [entry], prov) for i in sorted(alive)[::3]]
        archive.record_feedback_many(run, entries)
        archive.close_run(run, status="complete", counts={})
    for name in TIMED:
        docs = list(db[name].find({"source": "big"}))
        for n in range(NOISE):
            copies = [{**d, "_id": f"noise{n}:{d['_id']}", "source": f"noise{n}"} for d in docs]
            db[name].insert_many(copies, ordered=False)


@pytest.fixture(scope="module")
def synthetic(mongo_server: EmbeddedMongo) -> Iterator[tuple[Database, Database, Recorder]]:
    """The synthetic archive, plus the same database through a client that records reads."""
    name = f"qidx_{uuid.uuid4().hex[:8]}"
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    recorder = Recorder()
    watched: pymongo.MongoClient = pymongo.MongoClient(
        mongo_server.uri, tz_aware=True, event_listeners=[recorder]
    )
    _build(client[name])
    yield client[name], watched[name], recorder
    client.drop_database(name)
    client.close()
    watched.close()


def _ask_everything(db: Database) -> None:
    as_of(db, "big", run="big:000001")
    as_of(db, "big", run="big:000006")
    as_of(db, "big", run="big:000003", kind="listing", include_unobserved=True)
    changes(db, "big", "big:000002", "big:000004")
    price_series(db, "big", "k0001")
    for query in (
        Search(text="kush fresh", source="big"),
        Search(vendor="rapid-fjord", source="big"),
        Search(ships_to="DE", source="big"),
        Search(category="cannabis", source="big", max_usd=Decimal(300)),
        Search(source="big", min_usd=Decimal(1)),
        Search(text="haze", source="big", run="big:000002"),
    ):
        search(db, query)
    sales(db, "big")
    sales(db, "big", by="listing", until=T0 + timedelta(days=3))
    vendor_activity(db, "big", "lucid-thistle")


def _time(db: Database, collection: str, query: dict[str, Any], natural: bool) -> float:
    """Best of a few runs: the machine is shared, a scan is never faster than itself."""
    runs = []
    for _ in range(2 if natural else 3):
        cursor = db[collection].find(query, {"_id": 1})
        if natural:
            cursor = cursor.hint([("$natural", 1)])
        started = time.perf_counter()
        list(cursor)
        runs.append(time.perf_counter() - started)
    return min(runs)


def test_every_query_is_index_driven(synthetic: Any) -> None:
    db, watched, recorder = synthetic
    _ask_everything(watched)
    reads = [(c, q) for c, q in recorder.reads.values() if c in TIMED]
    assert len(reads) >= 10, recorder.reads.keys()
    slow = []
    for collection, query in reads:
        indexed = _time(db, collection, query, natural=False)
        scanned = _time(db, collection, query, natural=True)
        if indexed > scanned * 0.6:
            slow.append((collection, query, round(indexed, 4), round(scanned, 4)))
    assert not slow, slow


def test_the_scan_baseline_is_slow_enough_to_tell(synthetic: Any) -> None:
    db, _watched, _recorder = synthetic
    assert db["listing_versions"].estimated_document_count() > 4000


def test_text_index_is_refused_here_and_search_uses_tokens(synthetic: Any) -> None:
    db, _watched, _recorder = synthetic
    assert ensure_text_index(db) is False  # SecantusDB: code 67; real MongoDB: True
    result = search(db, Search(text="kush", source="big"))
    assert result["method"] == "tokens" and result["count"] > 0


def test_reindex_gives_old_versions_their_search_terms(db: Database) -> None:
    archive = Archive(db)
    archive.ensure_indexes()
    run = archive.open_run("old", parser_version="p1", started_at=T0)
    archive.record_rates(run, {"BTC": {"value": Decimal(60000), "quote": "USD"}})
    prov = Provenance("http://old.onion/l", "ab" * 32, T0, "p1")
    batch = [
        EntityObservation(f"k{i}", _content(random.Random(i), i, Decimal(1)), prov)
        for i in range(6)
    ]
    archive.record_entities(run, "listing", batch)
    archive.close_run(run, status="complete", counts={})
    before = search(db, Search(text="kush", source="old"))["count"]
    assert before == 1
    db["listing_versions"].update_many({}, {"$unset": {"tokens": "", "tokens_v": ""}})
    assert search(db, Search(text="kush", source="old"))["count"] == 0
    assert reindex(db, "old") == {"listing": 6, "vendor": 0}
    assert search(db, Search(text="kush", source="old"))["count"] == before
    assert reindex(db, "old") == {"listing": 0, "vendor": 0}  # idempotent


def _brute_valid(db: Database, seq: int) -> dict[str, int]:
    """Versions valid in run `seq`, from a scan of every version of the source."""
    docs = db["listing_versions"].find({"source": "big"}).hint([("$natural", 1)])
    return {d["key"]: d["v"] for d in docs if d["valid_from_seq"] <= seq < d["valid_to_seq"]}


def test_as_of_and_changes_equal_a_brute_force_reading(synthetic: Any) -> None:
    """Whichever index the planner picks, the answer is the scan's (SecantusDB once lost
    the versions starting in the asked run to a `$lte` bound on a compound index)."""
    db, _watched, _recorder = synthetic
    previous: dict[str, int] = {}
    for seq in range(1, RUNS + 1):
        run = f"big:{seq:06d}"
        expected = _brute_valid(db, seq)
        got = {e["key"]: e["version"] for e in as_of(db, "big", run=run)["entities"]}
        assert got == expected, seq
        if previous:
            result = changes(db, "big", f"big:{seq - 1:06d}", run)
            assert [e["key"] for e in result["new"]] == sorted(expected.keys() - previous.keys())
            assert [e["key"] for e in result["delisted"]] == sorted(
                previous.keys() - expected.keys()
            )
            moved = sorted(
                k for k in expected.keys() & previous.keys() if expected[k] != previous[k]
            )
            assert [c["key"] for c in result["changed"]] == moved
        previous = expected
