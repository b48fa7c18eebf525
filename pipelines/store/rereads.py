"""Rereads: what a later parser read from a run's archived pages, stored beside the crawl's.

A published analysis must stay reproducible after a parser fix, so a reparse never
rewrites a version. It stores, per parser version, only the entities whose content that
parser reads differently from the crawl (the fields that differ named on each), as
intervals of runs like versions, plus one `reparses` record per run and parser that says
the run was read in full. Readers overlay a reread on the crawl's versions only for runs
with that record, so a reparse that stops half way changes no answer, and writing the
same run again writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, IndexModel, InsertOne, UpdateOne

from pipelines.store.codec import content_hash, from_bson, to_bson
from pipelines.store.schema import KINDS, RUNS

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pymongo.database import Database

logger = logging.getLogger(__name__)

REPARSES = "reparses"
CRAWL = "crawl"  # names the crawl's own reading, whatever its parser version


def rereads_collection(kind: str) -> str:
    """`listing_rereads`, `vendor_rereads`: one document per entity, parser and run interval."""
    if kind not in KINDS:
        raise ValueError(f"unknown entity kind {kind!r}; expected one of {KINDS}")
    return f"{kind}_rereads"


INDEXES: dict[str, list[IndexModel]] = {
    REPARSES: [
        IndexModel([("run", ASCENDING), ("at", ASCENDING)]),
        IndexModel([("source", ASCENDING), ("seq", ASCENDING)]),
    ],
    **{
        rereads_collection(kind): [
            # Equality on source and parser, then the run interval (as in versions).
            IndexModel([("source", ASCENDING), ("parser", ASCENDING), ("valid_to_seq", ASCENDING)]),
            IndexModel([("source", ASCENDING), ("parser", ASCENDING), ("key", ASCENDING)]),
        ]
        for kind in KINDS
    },
}


class UnknownReadingError(KeyError):
    """A run was never read by the parser version a question names."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Reread:
    """One entity as a later parser read it in one run, where that differs from the crawl."""

    kind: str
    key: str
    content: dict[str, Any] | None  # None: the new parser reads no such entity there
    fields: list[str]
    url: str | None = None
    sha256: str | None = None
    fetched_at: datetime | None = None


@dataclass
class RunReading:
    """A run read again by one parser: what differs, and counts for its `reparses` record."""

    run_id: str
    source: str
    seq: int
    parser: str
    pages: int = 0
    entities: int = 0
    problems: int = 0
    rereads: list[Reread] = field(default_factory=list)


def ensure_indexes(db: Database) -> None:
    for name, models in INDEXES.items():
        db[name].create_indexes(models)


def write_reading(db: Database, reading: RunReading) -> dict[str, int]:
    """Store a run's rereads under its parser, then the record that makes them visible.

    An interval that ended at this run with the same content grows by one run; one that
    already covers this run is a replay and is left alone. Returns the counts written.
    """
    ensure_indexes(db)
    now = datetime.now(UTC)
    seq, written = reading.seq, {"inserted": 0, "extended": 0, "replayed": 0}
    for kind in KINDS:
        coll = db[rereads_collection(kind)]
        near = {
            d["key"]: d
            for d in coll.find(
                {
                    "source": reading.source,
                    "parser": reading.parser,
                    "valid_to_seq": {"$gt": seq - 1},
                }
            )
            if d["valid_from_seq"] <= seq
        }
        ops: list[InsertOne[Any] | UpdateOne] = []
        for reread in (r for r in reading.rereads if r.kind == kind):
            digest = content_hash(reread.content) if reread.content is not None else "absent"
            doc = near.get(reread.key)
            if doc is not None and doc["valid_to_seq"] > seq:
                written["replayed"] += 1
            elif doc is not None and doc["hash"] == digest:
                ops.append(
                    UpdateOne(
                        {"_id": doc["_id"], "valid_to_seq": seq},
                        {"$set": {"valid_to_seq": seq + 1}},
                    )
                )
                written["extended"] += 1
            else:
                ops.append(InsertOne(_document(reading, reread, digest, now)))
                written["inserted"] += 1
        if ops:
            coll.bulk_write(ops, ordered=False)
    db[REPARSES].replace_one(
        {"_id": f"{reading.run_id}@{reading.parser}"},
        {
            "source": reading.source,
            "run": reading.run_id,
            "seq": seq,
            "parser": reading.parser,
            "at": now,
            "pages": reading.pages,
            "entities": reading.entities,
            "differ": len(reading.rereads),
            "problems": reading.problems,
        },
        upsert=True,
    )
    return written


def _document(reading: RunReading, reread: Reread, digest: str, now: datetime) -> dict[str, Any]:
    return {
        "_id": f"{reading.source}:{reread.key}@{reading.parser}:{reading.seq}",
        "source": reading.source,
        "parser": reading.parser,
        "key": reread.key,
        "valid_from_seq": reading.seq,
        "valid_to_seq": reading.seq + 1,
        "hash": digest,
        "absent": reread.content is None,
        "content": to_bson(reread.content) if reread.content is not None else None,
        "fields": reread.fields,
        "provenance": {
            "run": reading.run_id,
            "url": reread.url,
            "page_sha256": reread.sha256,
            "fetched_at": reread.fetched_at,
            "parser_version": reading.parser,
            "reparsed_at": now,
        },
    }


def readings(db: Database, run_id: str) -> list[dict[str, Any]]:
    """The run's `reparses` records, oldest first."""
    return list(db[REPARSES].find({"run": run_id}).sort("at", ASCENDING))


def reading_parser(db: Database, run_id: str, parser: str | None = None) -> str | None:
    """The parser whose rereads answer for `run_id`; None means the crawl's own versions.

    By default the newest reparse of the run, else the crawl. A named parser must be the
    crawl's (or `crawl`) or one the run was reparsed with (`UnknownReadingError` otherwise).
    """
    if parser == CRAWL:
        return None
    records = readings(db, run_id)
    if parser is None:
        return records[-1]["parser"] if records else None
    run = db[RUNS].find_one({"_id": run_id}, {"parser_version": 1}) or {}
    if parser == run.get("parser_version"):
        return None
    if any(r["parser"] == parser for r in records):
        return parser
    known = [str(run.get("parser_version"))] + [r["parser"] for r in records]
    raise UnknownReadingError(
        f"run {run_id} was not read by parser {parser}; it was read by {', '.join(known)}"
    )


def shared_reading(db: Database, run_a: str, run_b: str) -> str:
    """The newest parser that read both runs (crawled or reparsed), else `crawl`.

    Comparing two runs read by different parsers would report every field the parsers
    read differently as a change in the market; one reading for both avoids that.
    """

    def parsers(run_id: str) -> list[str]:
        run = db[RUNS].find_one({"_id": run_id}, {"parser_version": 1}) or {}
        return [str(run.get("parser_version"))] + [r["parser"] for r in readings(db, run_id)]

    in_b = set(parsers(run_b))
    return next((p for p in reversed(parsers(run_a)) if p in in_b), CRAWL)


def overlay(
    db: Database, source: str, kind: str, seq: int, parser: str, keys: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Rereads by `parser` valid in run `seq`, by key (content None: not read by it)."""
    wanted = set(keys) if keys is not None else None
    return {
        key: reread
        for key, reread in rereads_in_run(db, source, kind, seq, parser)
        if wanted is None or key in wanted
    }


def rereads_in_run(
    db: Database, source: str, kind: str, seq: int, parser: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """`(key, reread)` of each reread by `parser` valid in run `seq`, streamed (`overlay`)."""
    query: dict[str, Any] = {"source": source, "parser": parser, "valid_to_seq": {"$gt": seq}}
    for doc in db[rereads_collection(kind)].find(query):
        if doc["valid_from_seq"] > seq:
            continue
        reread = {
            "key": doc["key"],
            "content": from_bson(doc["content"]) if doc["content"] is not None else None,
            "fields": doc["fields"],
            "provenance": from_bson(doc["provenance"]),
        }
        yield doc["key"], reread


def apply_overlay(entities: dict[str, dict[str, Any]], rereads: dict[str, dict[str, Any]]) -> None:
    """Replace, add or drop `entities` (by key) as the rereads say, in place."""
    for key, reread in rereads.items():
        if reread["content"] is None:
            entities.pop(key, None)
            continue
        base = entities.get(key) or {"key": key, "v": None, "first_seen_run": None}
        entities[key] = {
            **base,
            "content": reread["content"],
            "provenance": reread["provenance"],
            "reread_fields": reread["fields"],
        }


def run_readers(
    db: Database, source: str, crawl_parsers: dict[str, str], parser: str | None = None
) -> dict[str, str | None]:
    """Which reading answers for each run (None: the crawl's), from one indexed read.

    `crawl_parsers` maps run ids to the parser they were crawled with. By default every
    run has its newest reading; a named parser keeps only the runs it read (crawled or
    reparsed), so a series under one parser never mixes in another's reading.
    """
    newest: dict[str, str] = {}
    read_by: dict[str, set[str]] = {}
    for record in db[REPARSES].find({"source": source}).sort("at", ASCENDING):
        newest[record["run"]] = record["parser"]
        read_by.setdefault(record["run"], set()).add(record["parser"])
    if parser is None:
        return {run: newest.get(run) for run in crawl_parsers}
    if parser == CRAWL:
        return dict.fromkeys(crawl_parsers)
    return {
        run: (None if crawled == parser else parser)
        for run, crawled in crawl_parsers.items()
        if crawled == parser or parser in read_by.get(run, ())
    }


def entity_rereads(
    db: Database, source: str, kind: str, key: str, parser: str
) -> list[dict[str, Any]]:
    """Every reread of one entity by one parser, oldest first (content None: not read)."""
    query = {"source": source, "parser": parser, "key": key}
    docs = db[rereads_collection(kind)].find(query).sort("valid_from_seq", ASCENDING)
    return [from_bson(d) for d in docs]
