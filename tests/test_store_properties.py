"""Property test of the versioning store: random runs, crashes and resumes, exact per-run truth.

A small market (at most 8 listings and vendors, buyers' feedback on listings) changes from
run to run; each run writes what it observed through the archive's own write path in random
batches. Some runs crash between two database writes (a bulk cut off part-way, as a killed
crawler leaves it), are closed `interrupted` and resumed, or never resumed; some write a
batch twice; some are partial. A plain-Python model keeps what each run truly saw, and
after every sequence the store must give it back exactly, run by run: `observed`, `as_of`
(with and without unobserved entities), the run export and the feedback as each run knew it.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipelines.query.asof import as_of
from pipelines.store import queries
from pipelines.store.archive import Archive
from pipelines.store.codec import from_bson
from pipelines.store.embedded import EmbeddedMongo
from pipelines.store.export import export_run, jsonable
from pipelines.store.model import EntityObservation, Provenance
from pipelines.store.runs import mark_interrupted
from pipelines.store.schema import OPEN_SEQ, current_collection, ensure_indexes, versions_collection

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database

SOURCE = "prop"
T0 = datetime(2026, 5, 1, tzinfo=UTC)
LISTINGS = ("l0", "l1", "l2", "l3", "l4")
VENDORS = ("v0", "v1", "v2")
KIND_OF = {**dict.fromkeys(LISTINGS, "listing"), **dict.fromkeys(VENDORS, "vendor")}
EXPORT_ONLY = frozenset({"kind", "key", "version", "provenance", "first_seen_run", "usd"})
WRITES = frozenset(
    {
        "bulk_write",
        "delete_many",
        "delete_one",
        "find_one_and_update",
        "insert_many",
        "insert_one",
        "replace_one",
        "update_many",
        "update_one",
    }
)


# -- crashes: the process dies between two real writes ----------------------------------------
class Crash(Exception):
    """The crawler died here; nothing after this write reached the database."""


@dataclass
class Fuse:
    """Lets `writes` writes through, then cuts the next one off (keeping `keep` of a bulk)."""

    writes: int | None
    keep: int = 0

    def spend(self) -> bool:
        """True when this write is the one the crash cuts off."""
        if self.writes is None:
            return False
        if self.writes == 0:
            return True
        self.writes -= 1
        return False


class CrashingCollection:
    """A real collection whose writes stop at the fuse, as a killed process's would."""

    def __init__(self, coll: pymongo.collection.Collection, fuse: Fuse) -> None:
        self._coll = coll
        self._fuse = fuse

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._coll, name)
        if name not in WRITES:
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            if not self._fuse.spend():
                return attr(*args, **kwargs)
            if name == "bulk_write" and self._fuse.keep:  # a bulk cut off part-way
                ops = list(args[0])[: self._fuse.keep]
                if ops:  # a duplicate in the kept part is what a crash leaves too
                    with contextlib.suppress(Exception):
                        self._coll.bulk_write(ops, ordered=False)
            raise Crash(f"{self._coll.name}.{name}")

        return write


class CrashingDatabase:
    """The database as one crawler process sees it: every collection behind one fuse."""

    def __init__(self, db: Database, fuse: Fuse) -> None:
        self._db = db
        self._fuse = fuse

    def __getitem__(self, name: str) -> CrashingCollection:
        return CrashingCollection(self._db[name], self._fuse)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


# -- the generated plan ---------------------------------------------------------------------
@dataclass(frozen=True)
class Sale:
    """One buyer's feedback: its identity is unique, its true date inside every interval."""

    n: int
    listing: str

    @property
    def when(self) -> datetime:
        return T0 - timedelta(days=30) + timedelta(hours=7 * self.n)


@dataclass
class Attempt:
    """One crawler process working on the run: its batches, and where it dies, if it does."""

    batches: list[list[str]]
    crash_at: int | None  # writes let through before the crash (None: no crash)
    keep: int  # ops of a cut-off bulk that still reach the server
    replay: int | None  # index of a batch written twice in a row
    stop_after: int | None  # a clean stop (SIGTERM) after this many batches
    skip_done: bool  # a resume that writes only the batches not completed before


@dataclass
class RunPlan:
    world: dict[str, int]  # key -> content variant, for entities on the market
    observed: list[str]  # what the crawl reaches (all of `world` unless partial)
    status: str  # "complete" or "partial", if the run ever finishes
    attempts: list[Attempt]
    resume: bool  # resume after a crash or stop (else the run stays interrupted)
    shown: dict[int, tuple[int, int]]  # sale -> hours before / after its date shown this run
    sales: list[Sale] = field(default_factory=list)


def content(key: str, variant: int) -> dict[str, Any]:
    if KIND_OF[key] == "vendor":
        return {"name": key, "rating": Decimal(variant) / 2, "bio": f"bio {variant % 2}"}
    return {
        "title": f"{key} offer {variant}",
        "price": {"amount": Decimal(10 + variant), "currency": "BTC", "text": f"{10 + variant}"},
        "tags": ["x", {"n": Decimal("1.5")}] if variant % 2 else [],
    }


def entry(sale: Sale, shown: tuple[int, int]) -> dict[str, Any]:
    before, after = shown
    return {
        "rating": 5,
        "text": f"sale {sale.n}",
        "buyer": f"b{sale.n}",
        "date_earliest": sale.when - timedelta(hours=before),
        "date_latest": sale.when + timedelta(hours=after),
        "date_text": "recently",
    }


@st.composite
def attempts(draw: st.DrawFn, keys: list[str]) -> Attempt:
    order = draw(st.permutations(keys))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=3)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    batches = [b for b in batches if b] or [[]]
    crash = draw(st.one_of(st.none(), st.integers(0, 20)))
    stop = draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, len(batches) - 1)))
    replay = draw(st.one_of(st.none(), st.none(), st.integers(0, len(batches) - 1)))
    return Attempt(batches, crash, draw(st.integers(0, 2)), replay, stop, draw(st.booleans()))


@st.composite
def plans(draw: st.DrawFn) -> list[RunPlan]:
    runs: list[RunPlan] = []
    sales: list[Sale] = []
    for _ in range(draw(st.integers(1, 3))):
        variants = st.one_of(st.none(), st.integers(0, 2))
        world = {k: v for k in KIND_OF if (v := draw(variants)) is not None}
        partial = draw(st.booleans()) and draw(st.booleans())
        observed = sorted(world)
        if partial:
            observed = sorted(draw(st.sets(st.sampled_from(sorted(world))))) if world else []
        for key in (k for k in LISTINGS if k in world):
            if draw(st.integers(0, 2)) == 0:
                sales.append(Sale(len(sales), key))
        shown = {s.n: (draw(st.integers(1, 3)), draw(st.integers(1, 3))) for s in sales}
        first = draw(attempts(observed))
        plan = RunPlan(
            world=world,
            observed=observed,
            status="partial" if partial else "complete",
            attempts=[first],
            resume=draw(st.booleans()) or draw(st.booleans()),
            shown=shown,
            sales=list(sales),
        )
        if plan.resume:
            plan.attempts.append(draw(attempts(observed)))
            plan.attempts.append(draw(attempts(observed)))
        runs.append(plan)
    return runs


# -- the model: what each run truly saw -----------------------------------------------------
@dataclass
class Truth:
    """One run as the model knows it; `maybe_*` are writes a crash may or may not have made."""

    run_id: str
    seq: int
    status: str
    world: dict[str, int]
    shown: dict[int, tuple[int, int]]
    seen: set[str] = field(default_factory=set)
    maybe_seen: set[str] = field(default_factory=set)
    sales: set[int] = field(default_factory=set)
    maybe_sales: set[int] = field(default_factory=set)
    listed: dict[str, set[int | None]] = field(default_factory=dict)  # after the run


@dataclass
class Written:
    """Everything written to the store for one run so far: batches whose calls returned."""

    seen: set[str] = field(default_factory=set)
    sales: set[int] = field(default_factory=set)
    maybe_seen: set[str] = field(default_factory=set)
    maybe_sales: set[int] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)  # keys of batches written whole


def observation(key: str, variant: int, seq: int) -> EntityObservation:
    prov = Provenance(f"http://m.onion/{key}", f"{seq:064x}", T0 + timedelta(days=seq), "p1")
    return EntityObservation(key, content(key, variant), prov)


def write_batch(
    archive: Archive, run: Any, plan: RunPlan, batch: list[str], done: Written, seq: int
) -> None:
    """One batch as the pipeline writes it: listings, vendors, then the listings' feedback."""
    for kind in ("listing", "vendor"):
        keys = [k for k in batch if KIND_OF[k] == kind]
        if not keys:
            continue
        done.maybe_seen.update(keys)
        items = [observation(k, plan.world[k], seq) for k in keys]
        archive.record_entities(run, kind, items)  # type: ignore[arg-type]
        done.seen.update(keys)
    pages = []
    for key in (k for k in batch if KIND_OF[k] == "listing"):
        sold = [s for s in plan.sales if s.listing == key]
        if sold:
            entries = [entry(s, plan.shown[s.n]) for s in sold]
            prov = Provenance(f"http://m.onion/{key}", f"{seq:064x}", T0, "p1")
            pages.append((key, entries, prov))
            done.maybe_sales.update(s.n for s in sold)
    if pages:
        archive.record_feedback_many(run, pages)
        done.sales.update(n for _, es, _ in pages for n in (int(e["buyer"][1:]) for e in es))
    done.completed.update(batch)


def snapshot(db: Database) -> dict[str, list[Any]]:
    names = [
        "observations",
        "feedback",
        *(f(k) for k in ("listing", "vendor") for f in (current_collection, versions_collection)),
    ]
    return {n: sorted(db[n].find(), key=lambda d: d["_id"]) for n in names}


def play(db: Database, plan: RunPlan, day: int, listed: dict[str, set[int | None]]) -> Truth:
    """One run: attempts until one finishes, or until the run is left interrupted."""
    started = T0 + timedelta(days=day)
    run = Archive(db).open_run(SOURCE, parser_version="p1", started_at=started)
    done = Written()
    finished: str | None = None
    for number, attempt in enumerate(plan.attempts):
        last = number == len(plan.attempts) - 1 and number > 0
        fuse = Fuse(None if last else attempt.crash_at, attempt.keep)
        archive = Archive(CrashingDatabase(db, fuse))  # type: ignore[arg-type]
        batches = attempt.batches
        if number and attempt.skip_done:  # the pages already archived are not written again
            batches = [[k for k in b if k not in done.completed] for b in batches]
        try:
            if number:
                run = archive.open_run(
                    SOURCE, parser_version="p1", started_at=started, resume=run.run_id
                )
            for i, batch in enumerate(batches):
                if attempt.stop_after == i and not last:  # SIGTERM: a clean stop
                    archive.close_run(run, status="interrupted", counts={})
                    break
                write_batch(archive, run, plan, batch, done, run.seq)
                if attempt.replay == i:
                    before = snapshot(db)
                    write_batch(archive, run, plan, batch, done, run.seq)
                    assert snapshot(db) == before, f"replayed batch {batch} wrote something"
            else:
                archive.close_run(run, status=plan.status, counts={})  # type: ignore[arg-type]
                finished = plan.status
        except Crash as crash:
            event(f"crashed at {crash}")
            if not mark_interrupted(db, run.run_id, "the crawler died"):
                stored = queries.get_run(db, run.run_id) or {}
                if stored.get("status") in ("complete", "partial"):  # died just after closing
                    finished = stored["status"]
        if finished or not plan.resume:
            break
    status = finished or "interrupted"
    event(f"run {status}{' after a resume' if number else ''}")
    if finished:
        assert done.maybe_seen <= done.seen and done.maybe_sales <= done.sales
    truth = Truth(
        run.run_id,
        run.seq,
        status,
        plan.world,
        plan.shown,
        seen=set(done.seen),
        maybe_seen=done.maybe_seen - done.seen,
        sales=set(done.sales),
        maybe_sales=done.maybe_sales - done.sales,
    )
    for key in done.seen:
        listed[key] = {plan.world[key]}
    for key in truth.maybe_seen:
        listed[key] = listed.get(key, {None}) | {plan.world[key]}
    if status == "complete":
        for kind in ("listing", "vendor"):
            if any(KIND_OF[k] == kind for k in done.seen):
                for key in (k for k in KIND_OF if KIND_OF[k] == kind and k not in done.seen):
                    listed[key] = {None}
    truth.listed = {k: set(v) for k, v in listed.items()}
    return truth


# -- what the store must give back ----------------------------------------------------------
def check_entities(
    db: Database, truth: Truth, kind: str, exported: list[dict[str, Any]]
) -> list[str]:
    """The run export (`observed`), `as_of` and the model agree on which entities the run
    saw, and how; with unobserved entities, `as_of` shows what was still listed then."""
    certain = {k for k in truth.seen if KIND_OF[k] == kind}
    possible = certain | {k for k in truth.maybe_seen if KIND_OF[k] == kind}
    lines = {x["key"]: x for x in exported if x["kind"] == kind}
    assert certain <= set(lines) <= possible, (truth.run_id, kind, sorted(lines))
    for key, line in lines.items():
        fields = {k: v for k, v in line.items() if k not in EXPORT_ONLY}
        assert fields == jsonable(content(key, truth.world[key])), (truth.run_id, key)
    market = as_of(db, SOURCE, kind=kind, run=truth.run_id, include_unobserved=True)["entities"]
    shown = {e["key"]: without_usd(e["content"]) for e in market}
    seen = {e["key"] for e in market if e["observed"]}
    assert seen == set(lines), (truth.run_id, kind, sorted(seen))
    for key in (k for k in KIND_OF if KIND_OF[k] == kind):
        allowed = [None if v is None else content(key, v) for v in truth.listed.get(key, {None})]
        assert shown.get(key) in allowed, (truth.run_id, key, shown.get(key), allowed)
    return sorted(lines)


def without_usd(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != "usd"}


def check_feedback(db: Database, truths: list[Truth], truth: Truth) -> list[int]:
    """Each sale once, first seen by a run that wrote it, its interval what runs up to R
    learned: the intersection of what they showed (a crash may have lost some of it)."""
    by_sale: dict[int, dict[str, Any]] = {}
    for doc in queries.feedback(db, SOURCE, run_id=truth.run_id):
        n = int(doc["buyer"][1:])
        assert n not in by_sale, f"sale {n} stored twice as of {truth.run_id}"
        by_sale[n] = doc
    earlier = [t for t in truths if t.seq <= truth.seq]
    certain = {n for t in earlier for n in t.sales}
    possible = certain | {n for t in earlier for n in t.maybe_sales}
    assert certain <= set(by_sale) <= possible, (truth.run_id, sorted(by_sale))
    for n, doc in by_sale.items():
        when = Sale(n, "").when
        sure = [t for t in earlier if n in t.sales]
        maybe = [t for t in earlier if n in t.sales | t.maybe_sales]
        lows = [when - timedelta(hours=t.shown[n][0]) for t in maybe]
        highs = [when + timedelta(hours=t.shown[n][1]) for t in maybe]
        sure_lows = [when - timedelta(hours=t.shown[n][0]) for t in sure]
        sure_highs = [when + timedelta(hours=t.shown[n][1]) for t in sure]
        assert doc["date_earliest"] in lows, (truth.run_id, n)
        assert doc["date_latest"] in highs, (truth.run_id, n)
        assert doc["date_earliest"] >= max(sure_lows, default=doc["date_earliest"]), n
        assert doc["date_latest"] <= min(sure_highs, default=doc["date_latest"]), n
        assert doc["first_run"] in {t.run_id for t in maybe}, n
        assert doc["first_seq"] <= min((t.seq for t in sure), default=doc["first_seq"]), n
    return sorted(by_sale)


def check_versions(db: Database, truths: list[Truth]) -> None:
    """Per entity: versions 1..n, each with its run's content, intervals that never overlap,
    no version equal to the one it replaced, and a current pointer on the last one."""
    by_run = {t.run_id: t for t in truths}
    for kind in ("listing", "vendor"):
        heads = {d["key"]: d for d in db[current_collection(kind)].find({"source": SOURCE})}
        history: dict[str, list[dict[str, Any]]] = {}
        for doc in db[versions_collection(kind)].find({"source": SOURCE}):
            history.setdefault(doc["key"], []).append(from_bson(doc))
        assert set(heads) == set(history), (kind, sorted(heads), sorted(history))
        for key, versions in history.items():
            versions.sort(key=lambda d: d["v"])
            assert [d["v"] for d in versions] == list(range(1, len(versions) + 1)), key
            for doc in versions:
                made = by_run[doc["valid_from_run"]]
                assert doc["content"] == content(key, made.world[key]), (key, doc["v"])
                assert doc["valid_from_seq"] < doc["valid_to_seq"], (key, doc["v"])
                if doc.get("end") == "delisted":
                    assert by_run[doc["valid_to_run"]].status == "complete", (key, doc["v"])
            for old, new in itertools.pairwise(versions):
                assert old["valid_to_seq"] <= new["valid_from_seq"], (key, old["v"], "overlap")
                if old.get("end") == "changed":
                    assert old["valid_to_seq"] == new["valid_from_seq"], (key, old["v"])
                    assert old["hash"] != new["hash"], (key, old["v"], "duplicate version")
            head, last = heads[key], versions[-1]
            assert (head["v"], head["hash"]) == (last["v"], last["hash"]), key
            assert (head["status"] == "listed") == (last["valid_to_seq"] == OPEN_SEQ), key


def check(db: Database, truths: list[Truth]) -> None:
    for truth in truths:
        header, *lines = export_run(db, SOURCE, truth.run_id)
        assert (header["run"], header["status"]) == (truth.run_id, truth.status)
        for kind in ("listing", "vendor"):
            keys = check_entities(db, truth, kind, lines)
            assert [x["key"] for x in lines if x["kind"] == kind] == keys  # ordered by key
        sales = check_feedback(db, truths, truth)
        assert sorted(int(x["buyer"][1:]) for x in lines if x["kind"] == "feedback") == sales
    check_versions(db, truths)


SHARDS = 4  # 4 x 250 = 1,000 examples, each shard on a fresh server


@pytest.fixture(scope="module", params=range(SHARDS))
def shard_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[pymongo.MongoClient]:
    """A server of its own per 250 examples: SecantusDB slows about 8x after some 12,000
    writes until it restarts, which would also slow every later test on a shared one."""
    with EmbeddedMongo(tmp_path_factory.mktemp(f"prop{request.param}")) as server:
        client: pymongo.MongoClient = pymongo.MongoClient(server.uri, tz_aware=True)
        yield client
        client.close()


@settings(
    max_examples=1000 // SHARDS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plan=plans())
def test_every_run_is_reconstructed_exactly(
    shard_client: pymongo.MongoClient, plan: list[RunPlan]
) -> None:
    with fresh_database(shard_client) as db:
        listed: dict[str, set[int | None]] = {}
        truths = [play(db, run, day, listed) for day, run in enumerate(plan)]
        check(db, truths)


@contextlib.contextmanager
def fresh_database(client: pymongo.MongoClient) -> Iterator[Database]:
    """A database of its own per example, on the one session server, dropped after."""
    name = f"prop_{uuid.uuid4().hex[:12]}"
    db = client[name]
    ensure_indexes(db)
    try:
        yield db
    finally:
        client.drop_database(name)


# -- what the property found, kept as plain regression tests --------------------------------
def crashing(db: Database, writes: int) -> Archive:
    return Archive(CrashingDatabase(db, Fuse(writes)))  # type: ignore[arg-type]


def test_a_version_whose_pointer_never_moved_is_dropped_when_the_run_is_interrupted(
    mongo_client: pymongo.MongoClient,
) -> None:
    """Killed between the version insert and the pointer move, a run left a second open
    version; the next run found its content unchanged, and then saw the orphan's content."""
    with fresh_database(mongo_client) as db:
        first = Archive(db).open_run(SOURCE, parser_version="p1", started_at=T0)
        Archive(db).record_entities(first, "listing", [observation("l0", 0, 1)])
        Archive(db).close_run(first, status="complete", counts={})
        second = Archive(db).open_run(SOURCE, parser_version="p1", started_at=T0)
        try:  # the version is inserted, the previous one closed, then the crawler dies
            crashing(db, 2).record_entities(second, "listing", [observation("l0", 1, 2)])
        except Crash as crash:
            assert str(crash) == "listings.bulk_write"
        assert mark_interrupted(db, second.run_id, "the crawler died")
        third = Archive(db).open_run(SOURCE, parser_version="p1", started_at=T0)
        Archive(db).record_entities(third, "listing", [observation("l0", 0, 3)])
        Archive(db).close_run(third, status="complete", counts={})
        (seen,) = queries.observed(db, third.run_id, "listing")
        assert seen["content"] == content("l0", 0)
        assert [
            (v["v"], v["valid_to_seq"]) for v in queries.versions(db, SOURCE, "listing", "l0")
        ] == [(1, OPEN_SEQ)]


def test_a_run_killed_while_closing_delists_nothing(mongo_client: pymongo.MongoClient) -> None:
    """Killed after closing the versions of what it delisted but before marking them, a
    run left listed entities with no open version: the next run saw them unchanged and
    its export lost them."""
    with fresh_database(mongo_client) as db:
        first = Archive(db).open_run(SOURCE, parser_version="p1", started_at=T0)
        both = [observation("l0", 0, 1), observation("l1", 0, 1)]
        Archive(db).record_entities(first, "listing", both)
        Archive(db).close_run(first, status="complete", counts={})
        second = Archive(db).open_run(SOURCE, parser_version="p1", started_at=T0)
        Archive(db).record_entities(second, "listing", [observation("l0", 0, 2)])
        try:
            crashing(db, 1).close_run(second, status="complete", counts={})
        except Crash as crash:
            assert str(crash) == "listings.bulk_write"
        assert mark_interrupted(db, second.run_id, "the crawler died")
        assert queries.delisted(db, SOURCE, second.run_id) == []
        third = Archive(db).open_run(SOURCE, parser_version="p1", started_at=T0)
        Archive(db).record_entities(third, "listing", both)
        Archive(db).close_run(third, status="complete", counts={})
        assert [e["key"] for e in queries.observed(db, third.run_id, "listing")] == ["l0", "l1"]
