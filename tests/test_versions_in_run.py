"""The versions valid in a run, by equality lookups, equal a scan of every version.

Random sequences of runs (complete, partial, killed while closing, killed mid-write,
resumed) over a few listings, starting at random seqs so versions span several run
buckets; after each, every run's answer is compared with a brute-force reading of the
stored versions, and every closed version's `spans` with its bounds.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_properties import Crash, CrashingDatabase, Fuse

from pipelines.query import reindex
from pipelines.store.archive import Archive
from pipelines.store.delisting import delist_unobserved
from pipelines.store.model import EntityObservation, Provenance
from pipelines.store.runs import mark_interrupted
from pipelines.store.schema import OPEN_SEQ, SOURCES
from pipelines.store.valid_in_run import SPAN, span_buckets, spans_complete, versions_in_run

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pymongo
    from pymongo.database import Database


SOURCE = "spans"
KEYS = ("a", "b", "c", "d", "e")
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
ENDINGS = ("complete", "partial", "killed_closing", "killed_writing", "resumed")


@dataclass(frozen=True)
class RunPlan:
    """One run: what it observes (key → content variant) and how it ends."""

    seen: dict[str, int]
    ending: str
    writes: int = 0  # writes let through before a crash (killed_writing)


def observation(key: str, variant: int, seq: int) -> EntityObservation:
    content = {
        "title": f"{key} {variant}",
        "price": {"amount": Decimal(variant), "currency": "BTC"},
    }
    prov = Provenance(f"http://m.onion/{key}", "ab" * 32, T0 + timedelta(days=seq), "p1")
    return EntityObservation(key, content, prov)


@contextmanager
def fresh_database(client: pymongo.MongoClient, first_seq: int) -> Iterator[Database]:
    """A database of its own per example, whose source's next run is `first_seq` + 1."""
    db = client[f"spans_{uuid.uuid4().hex[:12]}"]
    try:
        Archive(db).ensure_indexes()
        db[SOURCES].insert_one({"_id": SOURCE, "seq": first_seq, "spans": SPAN})
        yield db
    finally:
        client.drop_database(db.name)


def play(db: Database, plan: RunPlan) -> int:
    """Write one run as `plan` says; return its seq."""
    run = Archive(db).open_run(SOURCE, parser_version="p1", started_at=T0)
    batch = [observation(k, v, run.seq) for k, v in sorted(plan.seen.items())]
    if plan.ending == "killed_writing":
        with suppress(Crash):
            crashing = Archive(CrashingDatabase(db, Fuse(plan.writes)))  # type: ignore[arg-type]
            crashing.record_entities(run, "listing", batch)
        assert mark_interrupted(db, run.run_id, "the crawler died")
        return run.seq
    Archive(db).record_entities(run, "listing", batch)
    if plan.ending in ("killed_closing", "resumed"):
        delist_unobserved(db, run, "listing", set(plan.seen))  # then the crawler dies
        assert mark_interrupted(db, run.run_id, "the crawler died")
        if plan.ending == "killed_closing":
            return run.seq
        run = Archive(db).open_run(SOURCE, parser_version="p1", started_at=T0, resume=run.run_id)
        Archive(db).record_entities(run, "listing", batch)
    status = "partial" if plan.ending == "partial" else "complete"
    Archive(db).close_run(run, status=status, counts={})  # type: ignore[arg-type]
    return run.seq


def brute_force(db: Database, seq: int) -> set[tuple[str, int]]:
    docs = db["listing_versions"].find({"source": SOURCE}).hint([("$natural", 1)])
    return {(d["key"], d["v"]) for d in docs if d["valid_from_seq"] <= seq < d["valid_to_seq"]}


def looked_up(db: Database, seq: int) -> list[tuple[str, int]]:
    docs = versions_in_run(db, SOURCE, "listing", seq, {"key": 1, "v": 1})
    return sorted((d["key"], d["v"]) for d in docs)


def check(db: Database, seqs: list[int]) -> None:
    for seq in seqs:
        assert looked_up(db, seq) == sorted(brute_force(db, seq)), seq
    for doc in db["listing_versions"].find({"source": SOURCE}):
        if doc["valid_to_seq"] == OPEN_SEQ:
            assert "spans" not in doc, doc["_id"]
        else:
            assert doc["spans"] == span_buckets(doc["valid_from_seq"], doc["valid_to_seq"])


@st.composite
def plans(draw: st.DrawFn) -> RunPlan:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=len(KEYS)))
    seen = {k: draw(st.integers(0, 2)) for k in keys}
    return RunPlan(seen, draw(st.sampled_from(ENDINGS)), draw(st.integers(0, 4)))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=st.integers(0, 3 * SPAN), runs=st.lists(plans(), min_size=1, max_size=2 * SPAN))
def test_versions_in_each_run_equal_a_scan(
    mongo_client: pymongo.MongoClient, first: int, runs: list[RunPlan]
) -> None:
    with fresh_database(mongo_client, first) as db:
        seqs = [play(db, plan) for plan in runs]
        check(db, [first, *seqs, seqs[-1] + 1])


LONG_LIVED: list[tuple[str, dict[str, Any]]] = [
    # (ending, what the run sees): `a` valid over runs 3..70, `b` changing every run.
    *[("complete", {"a": 0, "b": n % 2}) for n in range(1, 3)],
    *[("complete", {"a": 1, "b": n % 2}) for n in range(3, 71)],
    ("complete", {"b": 0}),
]


def test_a_long_lived_version_lists_every_bucket_and_reindex_backfills_old_archives(
    mongo_client: pymongo.MongoClient,
) -> None:
    with fresh_database(mongo_client, 0) as db:
        seqs = [play(db, RunPlan(seen, ending)) for ending, seen in LONG_LIVED]
        (a2,) = db["listing_versions"].find({"source": SOURCE, "key": "a", "v": 2})
        assert (a2["valid_from_seq"], a2["valid_to_seq"]) == (3, 71)
        assert a2["spans"] == list(range(3 // SPAN, 70 // SPAN + 1))  # runs 3..70
        check(db, seqs)
        written = {d["_id"]: d.get("spans") for d in db["listing_versions"].find()}

        # An archive written before spans existed: no spans, no marker; read the old way.
        db["listing_versions"].update_many({}, {"$unset": {"spans": ""}})
        db[SOURCES].update_one({"_id": SOURCE}, {"$unset": {"spans": ""}})
        assert not spans_complete(db, SOURCE)
        for seq in seqs:
            assert looked_up(db, seq) == sorted(brute_force(db, seq)), seq

        reindex(db, SOURCE)
        assert spans_complete(db, SOURCE)
        assert {d["_id"]: d.get("spans") for d in db["listing_versions"].find()} == written
        check(db, seqs)


def test_a_new_source_is_marked_as_carrying_spans(archive: Archive, db: Database) -> None:
    archive.open_run("fresh", parser_version="p1", started_at=T0)
    assert spans_complete(db, "fresh")
