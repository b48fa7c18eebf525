"""Versioning, exact reconstruction, delisting and idempotence against a real server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from bson.decimal128 import Decimal128

from pipelines.store import queries
from pipelines.store.model import EntityObservation, Provenance
from pipelines.store.runs import mark_interrupted
from pipelines.store.schema import OPEN_SEQ

if TYPE_CHECKING:
    from pymongo.database import Database

    from pipelines.store.archive import Archive
    from pipelines.store.model import RunRef

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PER_ENTITY = ("listings", "listing_versions", "vendors", "vendor_versions")


def obs(key: str, title: str, amount: str = "10.00", day: int = 0) -> EntityObservation:
    content = {
        "title": title,
        "price": {"amount": Decimal(amount), "currency": "BTC", "text": f"{amount} BTC"},
        "posted": T0 - timedelta(days=3),
        "tags": ["a", {"b": Decimal("1.5")}],
    }
    prov = Provenance(f"http://m.onion/l/{key}", "ab" * 32, T0 + timedelta(days=day), "p1")
    return EntityObservation(key, content, prov)


def open_run(archive: Archive, day: int) -> RunRef:
    return archive.open_run("mkt", parser_version="p1", started_at=T0 + timedelta(days=day))


def counts(db: Database) -> dict[str, int]:
    return {name: db[name].count_documents({}) for name in PER_ENTITY}


def crawl(
    archive: Archive, day: int, items: list[EntityObservation], status: str = "complete"
) -> RunRef:
    run = open_run(archive, day)
    archive.record_entities(run, "listing", items)
    archive.close_run(run, status=status, counts={"expected": len(items)})  # type: ignore[arg-type]
    return run


def contents(db: Database, run: RunRef) -> dict[str, str]:
    return {e["key"]: e["content"]["title"] for e in queries.observed(db, run.run_id, "listing")}


def test_run_ids_are_sequential(archive: Archive) -> None:
    assert open_run(archive, 0).run_id == "mkt:000001"
    assert open_run(archive, 1).run_id == "mkt:000002"


def test_versions_only_on_change_and_unchanged_rerun_writes_nothing_per_entity(
    archive: Archive, db: Database
) -> None:
    run1 = open_run(archive, 0)
    first = archive.record_entities(run1, "listing", [obs("a", "A"), obs("b", "B")])
    assert (first.new, first.changed, first.unchanged) == (2, 0, 0)
    archive.close_run(run1, status="complete", counts={})
    before = counts(db)
    observations_before = db.observations.count_documents({})

    run2 = open_run(archive, 1)
    second = archive.record_entities(run2, "listing", [obs("a", "A", day=1), obs("b", "B", day=1)])
    closed = archive.close_run(run2, status="complete", counts={"pages": 2})
    assert (second.new, second.changed, second.unchanged) == (0, 0, 2)
    assert counts(db) == before
    assert db.observations.count_documents({}) == observations_before + 1
    assert closed.counts["listing"]["unchanged"] == 2
    assert queries.get_run(db, run2.run_id)["counts"]["pages"] == 2

    run3 = open_run(archive, 2)
    third = archive.record_entities(run3, "listing", [obs("a", "A2"), obs("b", "B")])
    assert (third.new, third.changed, third.unchanged) == (0, 1, 1)
    history = queries.versions(db, "mkt", "listing", "a")
    assert [v["v"] for v in history] == [1, 2]
    assert history[0]["valid_to_seq"] == run3.seq
    assert history[0]["valid_to_run"] == run3.run_id
    assert history[1]["valid_to_seq"] == OPEN_SEQ
    assert history[1]["provenance"]["run_id"] == run3.run_id
    assert history[1]["first_seen_run"] == run1.run_id


def test_exact_reconstruction_of_each_run(archive: Archive, db: Database) -> None:
    run1 = crawl(archive, 0, [obs("a", "A1"), obs("b", "B1")])
    run2 = crawl(archive, 1, [obs("a", "A2"), obs("c", "C1")], status="partial")
    run3 = crawl(archive, 2, [obs("a", "A2"), obs("c", "C2")])
    assert contents(db, run1) == {"a": "A1", "b": "B1"}
    assert contents(db, run2) == {"a": "A2", "c": "C1"}
    assert contents(db, run3) == {"a": "A2", "c": "C2"}
    entity = next(queries.observed(db, run1.run_id, "listing"))
    assert entity["v"] == 1
    assert entity["first_seen_run"] == run1.run_id
    assert entity["provenance"]["parser_version"] == "p1"


def test_delisting_only_from_complete_runs(archive: Archive, db: Database) -> None:
    crawl(archive, 0, [obs("a", "A"), obs("b", "B")])
    partial = crawl(archive, 1, [obs("a", "A")], status="partial")
    assert queries.delisted(db, "mkt", partial.run_id) == []
    assert db.listings.find_one({"_id": "mkt:b"})["status"] == "listed"
    failed = crawl(archive, 2, [obs("a", "A")], status="failed")
    assert queries.delisted(db, "mkt", failed.run_id) == []

    complete = open_run(archive, 3)
    archive.record_entities(complete, "listing", [obs("a", "A")])
    summary = archive.close_run(complete, status="complete", counts={})
    assert summary.delisted == 1
    assert queries.delisted(db, "mkt", complete.run_id) == ["b"]
    b = db.listings.find_one({"_id": "mkt:b"})
    assert (b["status"], b["delisted_run"]) == ("delisted", complete.run_id)
    assert queries.versions(db, "mkt", "listing", "b")[-1]["valid_to_seq"] == complete.seq
    assert queries.get_run(db, complete.run_id)["counts"]["listing"]["delisted"] == 1
    source = db.sources.find_one({"_id": "mkt"})
    assert source["listed"]["listing"] == 1
    assert source["last_complete_run"] == complete.run_id
    # closing again (a retried close) delists nothing more and keeps the count exact
    again = archive.close_run(complete, status="complete", counts={})
    assert again.delisted == 1


def test_complete_run_without_vendors_does_not_delist_vendors(
    archive: Archive, db: Database
) -> None:
    run1 = open_run(archive, 0)
    archive.record_entities(run1, "vendor", [obs("v1", "Vendor")])
    archive.close_run(run1, status="complete", counts={})
    run2 = crawl(archive, 1, [obs("a", "A")])
    assert db.vendors.find_one({"_id": "mkt:v1"})["status"] == "listed"
    assert queries.get_run(db, run2.run_id)["delisting_skipped"] == ["vendor"]


def test_reappearance_after_delisting_creates_a_new_version(archive: Archive, db: Database) -> None:
    crawl(archive, 0, [obs("a", "A"), obs("b", "B")])
    gone = crawl(archive, 1, [obs("a", "A")])
    back = open_run(archive, 2)
    summary = archive.record_entities(back, "listing", [obs("a", "A"), obs("b", "B")])
    archive.close_run(back, status="complete", counts={})
    assert (summary.reappeared, summary.unchanged) == (1, 1)
    history = queries.versions(db, "mkt", "listing", "b")
    assert [(v["v"], v["valid_from_seq"], v["valid_to_seq"]) for v in history] == [
        (1, 1, gone.seq),
        (2, back.seq, OPEN_SEQ),
    ]
    current = db.listings.find_one({"_id": "mkt:b"})
    assert current["status"] == "listed"
    assert "delisted_run" not in current
    assert contents(db, gone) == {"a": "A"}
    assert contents(db, back) == {"a": "A", "b": "B"}


def test_replayed_batch_is_idempotent(archive: Archive, db: Database) -> None:
    from pipelines.store.archive import Archive as ArchiveClass

    run1 = crawl(archive, 0, [obs("a", "A1")])
    run2 = open_run(archive, 1)
    batch = [obs("a", "A2"), obs("n", "N")]
    archive.record_entities(run2, "listing", batch)
    snapshot = counts(db), db.observations.count_documents({})
    archive.record_entities(run2, "listing", batch)  # same process
    fresh = ArchiveClass(db)  # a resumed crawler in another process
    resumed = fresh.open_run("mkt", parser_version="p1", started_at=T0, resume=run2.run_id)
    assert resumed == run2
    replay = fresh.record_entities(resumed, "listing", batch)
    assert (replay.new, replay.changed, replay.unchanged) == (0, 0, 2)
    assert (counts(db), db.observations.count_documents({})) == snapshot
    closed = fresh.close_run(resumed, status="complete", counts={})
    assert (closed.counts["listing"]["new"], closed.counts["listing"]["changed"]) == (1, 1)
    assert contents(db, run1) == {"a": "A1"}
    assert contents(db, run2) == {"a": "A2", "n": "N"}


def test_interrupted_write_is_completed_by_a_replay(archive: Archive, db: Database) -> None:
    crawl(archive, 0, [obs("a", "A1")])
    run2 = open_run(archive, 1)
    # simulate a crash after the version insert, before close-previous and the pointer move
    db.listing_versions.insert_one(
        {**db.listing_versions.find_one({"_id": "mkt:a:1"}), "_id": "mkt:a:2", "v": 2, "hash": "x"}
    )
    archive.record_entities(run2, "listing", [obs("a", "A2")])
    history = queries.versions(db, "mkt", "listing", "a")
    assert [v["content"]["title"] for v in history] == ["A1", "A2"]
    assert db.listings.find_one({"_id": "mkt:a"})["v"] == 2
    assert contents(db, run2) == {"a": "A2"}


def test_resume_refused_when_a_later_run_exists(archive: Archive) -> None:
    run1 = open_run(archive, 0)
    open_run(archive, 1)
    with pytest.raises(ValueError, match="later run"):
        archive.open_run("mkt", parser_version="p1", started_at=T0, resume=run1.run_id)


def test_decimal_round_trip(archive: Archive, db: Database) -> None:
    run = crawl(archive, 0, [obs("a", "A", amount="0.00012345")])
    stored = db.listing_versions.find_one({"_id": "mkt:a:1"})
    assert stored["content"]["price"]["amount"] == Decimal128("0.00012345")
    entity: dict[str, Any] = next(queries.observed(db, run.run_id, "listing"))
    assert entity["content"]["price"]["amount"] == Decimal("0.00012345")
    assert str(entity["content"]["price"]["amount"]) == "0.00012345"
    assert entity["content"]["tags"][1]["b"] == Decimal("1.5")
    assert entity["content"]["posted"] == T0 - timedelta(days=3)
    # the same content read back hashes the same: a re-crawl is unchanged
    run2 = open_run(archive, 1)
    assert (
        archive.record_entities(run2, "listing", [obs("a", "A", amount="0.00012345")]).unchanged
        == 1
    )


def test_rates_first_value_wins(archive: Archive, db: Database) -> None:
    run = open_run(archive, 0)
    btc = {"value": Decimal("67012.50"), "quote": "USD", "source": "market", "url": "u"}
    archive.record_rates(run, {"BTC": btc})
    archive.record_rates(run, {"BTC": {**btc, "value": Decimal("67100")}})
    archive.record_rates(run, {"BTC": btc, "XMR": {**btc, "value": Decimal("150.1")}})
    rates = queries.get_run(db, run.run_id)["rates"]
    assert rates["BTC"]["value"] == Decimal("67012.50")
    assert [o["value"] for o in rates["BTC"]["observations"]] == [Decimal("67100")]
    assert rates["XMR"]["value"] == Decimal("150.1")


def test_events_and_latest_run(archive: Archive, db: Database) -> None:
    run1 = crawl(archive, 0, [obs("a", "A")])
    run2 = open_run(archive, 1)
    for _ in range(2):  # a resumed run meets the same captcha again: one event
        archive.record_event(
            run2, kind="page", reason="captcha", url="http://m.onion/x", state="captcha"
        )
    assert db.run_events.find_one({"run": run2.run_id})["reason"] == "captcha"
    assert db.run_events.count_documents({"run": run2.run_id}) == 1
    assert queries.get_run(db, run2.run_id)["events"] == {"page": 1}
    assert queries.latest_run(db, "mkt")["_id"] == run1.run_id  # running runs excluded
    assert [r["_id"] for r in queries.runs(db, "mkt")] == [run1.run_id, run2.run_id]


def test_versions_made_by_a_new_parser_are_told_apart(archive: Archive, db: Database) -> None:
    """A selector fix changes content without the market changing: counts and history say so."""
    crawl(archive, 0, [obs("a", "A"), obs("b", "B")])
    market_change = crawl(archive, 1, [obs("a", "A2"), obs("b", "B")])
    fixed = [
        EntityObservation(o.key, o.content, replace(o.provenance, parser_version="p2"))
        for o in (obs("a", "A2 fixed"), obs("b", "B"))
    ]
    parser_change = crawl(archive, 2, fixed)
    first = queries.get_run(db, market_change.run_id)["counts"]["listing"]
    assert (first["changed"], first["changed_with_new_parser"]) == (1, 0)
    second = queries.get_run(db, parser_change.run_id)["counts"]["listing"]
    assert (second["changed"], second["changed_with_new_parser"]) == (1, 1)
    history = queries.entity_history(db, "mkt", "listing", "a")
    assert [v["parser_changed"] for v in history] == [False, False, True]


def test_an_orphan_left_by_a_crashed_run_never_overlaps_the_next_runs_version(
    archive: Archive, db: Database
) -> None:
    """A run killed after inserting a version but before moving the pointer leaves an orphan
    with the content the next run sees again: that version must start at the next run."""
    crawl(archive, 0, [obs("a", "A1")])
    crashed = open_run(archive, 1)
    archive.record_entities(crashed, "listing", [obs("a", "A2")])
    # Undo what the crash did not get to: the pointer and the close of version 1.
    db.listings.update_one({"_id": "mkt:a"}, {"$set": {"v": 1, "hash": "old"}})
    db.listing_versions.update_one({"_id": "mkt:a:1"}, {"$set": {"valid_to_seq": OPEN_SEQ}})
    mark_interrupted(db, crashed.run_id, "interrupted: killed")
    later = crawl(archive, 2, [obs("a", "A2")])
    history = sorted(db.listing_versions.find({"key": "a"}), key=lambda v: v["v"])
    assert [(v["valid_from_seq"], v["valid_to_seq"]) for v in history] == [
        (1, later.seq),
        (later.seq, OPEN_SEQ),
    ]
    assert history[1]["provenance"]["run_id"] == later.run_id
    assert contents(db, later) == {"a": "A2"}
