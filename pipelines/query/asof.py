"""Entities as of a run: the versions valid in it, by the cheaper of two index ranges."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.query.runs import READABLE, QueryError, Run, resolve_run, source_runs
from pipelines.store.codec import from_bson
from pipelines.store.export import add_usd
from pipelines.store.observations import observed_keys
from pipelines.store.rereads import (
    UnknownReadingError,
    apply_overlay,
    overlay,
    reading_parser,
)
from pipelines.store.schema import versions_collection

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from pymongo.database import Database

logger = logging.getLogger(__name__)

FIELDS = {"key": 1, "v": 1, "hash": 1, "content": 1, "provenance": 1, "first_seen_run": 1}
BOUNDS = {"valid_from_seq": 1, "valid_to_seq": 1}


def valid_versions(
    db: Database,
    source: str,
    kind: str,
    seq: int,
    runs: Sequence[Run] = (),
    projection: dict[str, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every version valid in run `seq` (valid_from_seq <= seq < valid_to_seq), raw BSON.

    Either bound alone is an index range, (source, valid_to_seq) or (source,
    valid_from_seq): versions ending after `seq` (few for a recent run) or versions
    starting at or before it (few for an early run). The runs' own counters say which
    side holds fewer; only that bound goes to the server and the other is checked here.
    Both bounds in one query made SecantusDB walk the whole source, and it reads `$lte` on
    a middle key of a compound index as `$lt`, so upper bounds are written `$lt: seq + 1`
    (seqs are integers).
    """
    fields = {**(projection or FIELDS), **BOUNDS}
    if _start_side_smaller(runs, kind, seq):
        query = {"source": source, "valid_from_seq": {"$lt": seq + 1}}
    else:
        query = {"source": source, "valid_to_seq": {"$gt": seq}}
    for doc in db[versions_collection(kind)].find(query, fields, batch_size=2000):
        if doc["valid_from_seq"] <= seq < doc["valid_to_seq"]:
            yield doc


def _start_side_smaller(runs: Sequence[Run], kind: str, seq: int) -> bool:
    started_upto = ended_upto = total = 0
    for run in runs:
        counts = run.counts.get(kind) or {}
        started = sum(int(counts.get(k) or 0) for k in ("new", "changed", "reappeared"))
        total += started
        if run.seq <= seq:
            started_upto += started
            ended_upto += int(counts.get("changed") or 0) + int(counts.get("delisted") or 0)
    return started_upto < total - ended_upto


def as_of(
    db: Database,
    source: str,
    *,
    kind: str = "listing",
    run: str | None = None,
    at: datetime | None = None,
    include_unobserved: bool = False,
    parser: str | None = None,
) -> dict[str, Any]:
    """The listings (or vendors) of a source as one run saw them, with USD for listings.

    `run` by id, or `at`: the last run started at or before that time; default the latest
    complete or partial run. Each entity carries the version valid then, its provenance
    and, for listings, `usd` at the rates that run recorded. By default only what the
    run observed (what `export --run` gives); `include_unobserved` adds entities still
    listed but not seen by a partial run, marked `observed: false`. Where the run was
    reparsed, the newest parser's reading answers unless `parser` names another (or
    `"crawl"`); the run header says which.
    """
    runs = source_runs(db, source)
    target = resolve_run(db, source, run=run, at=at)
    if target.status not in READABLE:
        logger.warning("run %s is %s: its content may still change", target.run_id, target.status)
    reader = _reader(db, target.run_id, parser)
    seen = observed_keys(db, target.run_id, kind)
    found: dict[str, dict[str, Any]] = {}
    for doc in valid_versions(db, source, kind, target.seq, runs):
        observed = doc["key"] in seen
        if observed or include_unobserved:
            found[doc["key"]] = {
                "key": doc["key"],
                "v": doc["v"],
                "first_seen_run": doc["first_seen_run"],
                "observed": observed,
                "content": from_bson(doc["content"]),
                "provenance": from_bson(doc["provenance"]),
            }
    if reader is not None:
        apply_overlay(found, overlay(db, source, kind, target.seq, reader))
    entities = []
    for key in sorted(found):
        entity = found[key]
        content = entity["content"]
        if kind == "listing":
            content = add_usd(content, target.rates, target.run_id)
        entities.append(
            {
                "key": key,
                "version": entity["v"],
                "first_seen_run": entity["first_seen_run"],
                "observed": entity.get("observed", True),
                "content": content,
                "provenance": entity["provenance"],
                **({"reread_fields": entity["reread_fields"]} if "reread_fields" in entity else {}),
            }
        )
    header = {**target.header(), "parser": reader or target.parser_version}
    return {"source": source, "kind": kind, "run": header, "entities": entities}


def _reader(db: Database, run_id: str, parser: str | None) -> str | None:
    try:
        return reading_parser(db, run_id, parser)
    except UnknownReadingError as exc:
        raise QueryError(str(exc)) from exc
