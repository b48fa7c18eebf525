"""The versions valid in one run, found by equality lookups whatever the archive's age.

A version is valid in run R when valid_from_seq <= R < valid_to_seq. Two ranges in one
query walk every version of the source on SecantusDB, and either range alone grows with
the archive's age, so the lookup is two equalities instead:

- open versions (`valid_to_seq == OPEN_SEQ`), with `valid_from_seq <= R` on the same
  (source, valid_to_seq, valid_from_seq) index;
- closed versions by the run buckets they span: closing a version valid over runs
  3..70 stores `spans: [0, 1, …, 8]` (bucket = seq // SPAN), and the multikey index
  (source, spans, valid_to_seq) finds those of R's bucket still valid after R.
  That also reads the versions of R's bucket that start after R: most of a bucket's for
  R early in it where listings change often (3.8-4.3x the versions returned at 45 %
  change per run, bench/README.md). Where the runs' counters say fewer versions started
  in R's bucket up to R than after it, the closed versions are read as two exact sets
  instead: those started before the bucket (they span the bucket before,
  `spans == R // SPAN - 1`, and end after R) and those started in the bucket up to R
  (the (source, valid_from_seq) index; its open ones come from the first lookup).

The bounds are checked again here, so at most SPAN runs' worth of extra versions is read.
A source whose closed versions may lack `spans` (written before them) has no `spans`
marker on its source document and is read the old way until `darkarchive reindex`
backfills it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bson.codec_options import CodecOptions, TypeDecoder, TypeRegistry
from bson.decimal128 import Decimal128
from bson.raw_bson import RawBSONDocument

from pipelines.store.prefetch import prefetched
from pipelines.store.schema import KINDS, OPEN_SEQ, RUNS, SOURCES, versions_collection

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from pymongo.database import Database

logger = logging.getLogger(__name__)

SPAN = 8  # runs per bucket: a lookup reads the versions valid in R plus those of R's
# bucket that start after R (measured 14-22 % more at 5 % change per run; 28-46 % with 16),
# and a closed version lists 2-3 buckets there (a 10-year daily version ~460).
BOUNDS = {"valid_from_seq": 1, "valid_to_seq": 1}
BATCH = 2000
WINDOW = 32  # runs whose closed versions one backfill command rewrites

# Reopening a closed version (an unfinished run's close undone) drops its buckets too.
REOPEN: dict[str, Any] = {
    "$set": {"valid_to_seq": OPEN_SEQ, "valid_to_run": None},
    "$unset": {"end": "", "spans": ""},
}


class _DecimalDecoder(TypeDecoder):
    """Decimal128 read as Decimal by the BSON decoder itself (as `codec.from_bson` does)."""

    bson_type = Decimal128

    def transform_bson(self, value: Any) -> Any:
        return value.to_decimal()


def with_decimals(options: CodecOptions) -> CodecOptions:
    """`options` with Decimal128 decoded as Decimal."""
    return options.with_options(type_registry=TypeRegistry([_DecimalDecoder()]))


def span_buckets(valid_from_seq: int, valid_to_seq: int) -> list[int]:
    """Buckets of the runs valid_from_seq .. valid_to_seq - 1 (none for an empty interval)."""
    if valid_to_seq <= valid_from_seq:
        return []
    return list(range(valid_from_seq // SPAN, (valid_to_seq - 1) // SPAN + 1))


def closing(seq: int, run_id: str, end: str) -> list[dict[str, Any]]:
    """Update (a pipeline) that ends a version at run `seq` and stores the buckets it
    spans, computed on the server from the version's own `valid_from_seq`: the closer
    needs to know nothing about the version, and the guard in its filter stays the only
    condition. Same as `span_buckets`.
    """
    first = {"$floor": {"$divide": ["$valid_from_seq", SPAN]}}
    buckets = {
        "$cond": [
            {"$lt": ["$valid_from_seq", seq]},
            {"$range": [first, (seq - 1) // SPAN + 1]},
            [],
        ]
    }
    ended = {
        "valid_to_seq": {"$literal": seq},
        "valid_to_run": {"$literal": run_id},
        "end": {"$literal": end},
        "spans": buckets,
    }
    return [{"$set": ended}]


def spans_complete(db: Database, source: str) -> bool:
    """Does every closed version of `source` carry `spans` of today's bucket size?"""
    doc = db[SOURCES].find_one({"_id": source}, {"spans": 1}) or {}
    return doc.get("spans") == SPAN


def versions_in_run(
    db: Database,
    source: str,
    kind: str,
    seq: int,
    projection: Mapping[str, int] | None = None,
    *,
    batch_size: int = BATCH,
    decimals: bool = False,
    raw: bool = False,
) -> Iterator[Any]:
    """Every version of `kind` valid in run `seq` of `source` (raw BSON), streamed.

    Each carries `projection` plus its bounds; None (the default) reads whole versions,
    which is what a reader of content wants: SecantusDB copies every projected value
    (measured 145-180 µs of server CPU per version with content and provenance
    projected, 92-99 µs for the whole document). Order: open versions, then closed
    ones. The next batch is read while the caller works on this one (prefetch.py).
    With `decimals`, Decimal128 values arrive as Decimals, converted by the BSON decoder
    as it reads them rather than by a walk over every document afterwards. With `raw`,
    versions arrive as `RawBSONDocument`s, their fields decoded only when asked for: for a
    reader that keeps a version's bytes (run_entities.py) and decodes it later, once.
    """
    fields = None if projection is None else {**projection, **BOUNDS}
    coll = db[versions_collection(kind)]
    if decimals:
        coll = coll.with_options(codec_options=with_decimals(coll.codec_options))
    if raw:
        options = coll.codec_options.with_options(document_class=RawBSONDocument)
        coll = coll.with_options(codec_options=options)
    queries = _queries(db, source, kind, seq)

    def read() -> Iterator[dict[str, Any]]:
        for query, open_too in queries:
            with coll.find(query, fields, batch_size=batch_size) as cursor:
                for doc in cursor:
                    if doc["valid_from_seq"] <= seq < doc["valid_to_seq"] and (
                        open_too or doc["valid_to_seq"] != OPEN_SEQ
                    ):
                        yield doc

    return prefetched(read, batch_size)


def _queries(db: Database, source: str, kind: str, seq: int) -> list[tuple[dict[str, Any], bool]]:
    """The finds whose answers, bounds checked, are the versions valid in run `seq`, each
    with whether its open versions count (one find only may return them)."""
    if not spans_complete(db, source):
        return [(_one_bound(db, source, kind, seq), True)]
    bucket = seq // SPAN
    # `$lt: seq + 1`, not `$lte`: SecantusDB reads `$lte` on a later key as `$lt`.
    found = [
        ({"source": source, "valid_to_seq": OPEN_SEQ, "valid_from_seq": {"$lt": seq + 1}}, True)
    ]
    first = bucket * SPAN
    upto = after = 0
    bucket_runs = {"source": source, "seq": {"$gte": first, "$lt": first + SPAN}}
    for run in db[RUNS].find(bucket_runs, {"seq": 1, "counts": 1}):
        if int(run["seq"]) <= seq:
            upto += _started(run, kind)
        else:
            after += _started(run, kind)
    if upto >= after:
        spanning = {
            "source": source,
            "spans": bucket,
            "valid_to_seq": {"$gt": seq, "$lt": OPEN_SEQ},
        }
        return [*found, (spanning, True)]
    started = {"source": source, "valid_from_seq": {"$gte": first, "$lt": seq + 1}}
    if bucket == 0:  # nothing started before the first bucket
        return [*found, (started, False)]
    before = {"source": source, "spans": bucket - 1, "valid_to_seq": {"$gt": seq, "$lt": OPEN_SEQ}}
    return [*found, (before, True), (started, False)]


def _one_bound(db: Database, source: str, kind: str, seq: int) -> dict[str, Any]:
    """Without spans: the bound the runs' counters say holds fewer versions (grows with age)."""
    started_upto = ended_upto = total = 0
    for run in db[RUNS].find({"source": source}, {"seq": 1, "counts": 1}):
        counts = (run.get("counts") or {}).get(kind) or {}
        started = _started(run, kind)
        total += started
        if int(run["seq"]) <= seq:
            started_upto += started
            ended_upto += int(counts.get("changed") or 0) + int(counts.get("delisted") or 0)
    if started_upto < total - ended_upto:
        return {"source": source, "valid_from_seq": {"$lt": seq + 1}}
    return {"source": source, "valid_to_seq": {"$gt": seq}}


def _started(run: Mapping[str, Any], kind: str) -> int:
    """How many versions of `kind` the run's counters say it started."""
    counts = (run.get("counts") or {}).get(kind) or {}
    return sum(int(counts.get(k) or 0) for k in ("new", "changed", "reappeared"))


def backfill_spans(db: Database, source: str) -> dict[str, int]:
    """Give every closed version of `source` its `spans`, then mark the source complete.

    For archives written before spans existed (`darkarchive reindex`). The server computes
    the buckets from each version's own bounds, one window of WINDOW runs' closes per
    command (a range on the (source, valid_to_seq) index), so nothing travels to Python.
    Idempotent, and a crawl may run meanwhile: its closes write spans themselves, and the
    marker is set only after every window is done. Returns how many versions of each kind
    were rewritten.
    """
    counter = db[SOURCES].find_one({"_id": source}, {"seq": 1}) or {}
    last = int(counter.get("seq") or 0)
    buckets = {
        "$cond": [
            {"$lt": ["$valid_from_seq", "$valid_to_seq"]},
            {
                "$range": [
                    {"$floor": {"$divide": ["$valid_from_seq", SPAN]}},
                    {"$add": [{"$floor": {"$divide": [{"$add": ["$valid_to_seq", -1]}, SPAN]}}, 1]},
                ]
            },
            [],
        ]
    }
    done: dict[str, int] = {}
    for kind in KINDS:
        coll = db[versions_collection(kind)]
        done[kind] = 0
        for low in range(0, last + 1, WINDOW):
            window = {"$gte": low, "$lt": min(low + WINDOW, last + 1)}
            result = coll.update_many(
                {"source": source, "valid_to_seq": window}, [{"$set": {"spans": buckets}}]
            )
            done[kind] += result.modified_count
        logger.info("gave %d closed %s versions of %s their spans", done[kind], kind, source)
    db[SOURCES].update_one({"_id": source}, {"$set": {"spans": SPAN}})
    return done
