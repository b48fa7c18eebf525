"""What changed between two runs: new, changed (which fields), delisted and relisted keys."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.query.runs import QueryError, Run, resolve_run, source_runs
from pipelines.store.codec import content_hash, from_bson, to_bson
from pipelines.store.rereads import (
    CRAWL,
    UnknownReadingError,
    overlay,
    reading_parser,
    shared_reading,
)
from pipelines.store.schema import versions_collection

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)

FIELDS = {"key": 1, "v": 1, "hash": 1, "content": 1, "first_seen_run": 1}
FIELDS |= {"valid_from_seq": 1, "valid_to_seq": 1, "end": 1}


def changes(
    db: Database,
    source: str,
    run_a: str,
    run_b: str,
    *,
    kind: str = "listing",
    parser: str | None = None,
) -> dict[str, Any]:
    """The change set from run A to run B (A before B), read from the versions that ended
    or started between them: two index ranges whose size is the number of changes, never
    the size of the market.

    - `new`: listed in B, not in A, first seen after A;
    - `relisted`: listed in B, not in A, seen before (it had been delisted);
    - `delisted`: listed in A, not in B (only a complete run delists: an entity a partial
      run missed is still listed);
    - `changed`: listed in both with different content, with the fields that differ.

    Both runs are read by one parser: `parser` (or `"crawl"`), by default the newest that
    read both; the few entities a reread touches are compared again with that content.
    """
    a = resolve_run(db, source, run=run_a)
    b = resolve_run(db, source, run=run_b)
    if a.seq >= b.seq:
        raise QueryError(f"run {a.run_id} must come before run {b.run_id}")
    coll = db[versions_collection(kind)]
    between = {"$gt": a.seq, "$lt": b.seq + 1}  # `$lte` here: SecantusDB would read `$lt`
    ended = coll.find({"source": source, "valid_to_seq": between}, FIELDS)
    started = coll.find({"source": source, "valid_from_seq": between}, FIELDS)
    at_a = {d["key"]: d for d in ended if d["valid_from_seq"] <= a.seq}
    at_b = {d["key"]: d for d in started if d["valid_to_seq"] > b.seq}
    # First seen after A means first seen in one of the runs after it, up to B.
    after_a = {run.run_id for run in source_runs(db, source, first=a.seq + 1, end=b.seq + 1)}
    result: dict[str, Any] = {
        "source": source,
        "kind": kind,
        "from": a.header(),
        "to": b.header(),
        "new": [],
        "changed": [],
        "delisted": [],
        "relisted": [],
    }
    both = parser or shared_reading(db, a.run_id, b.run_id)
    (reader_a, reread_a), (reader_b, reread_b) = (
        _rereads(db, source, kind, run, both) for run in (a, b)
    )
    for key in reread_a.keys() | reread_b.keys():
        at_a[key] = _at(db, source, kind, key, a.seq, at_a.get(key), reread_a.get(key))
        at_b[key] = _at(db, source, kind, key, b.seq, at_b.get(key), reread_b.get(key))
    for key in sorted(at_a.keys() | at_b.keys()):
        before, after = at_a.get(key), at_b.get(key)
        if after is None and before is not None:
            result["delisted"].append(_entity(before))
        elif before is None and after is not None:
            fresh = after["first_seen_run"] in after_a or after["first_seen_run"] is None
            result["new" if fresh else "relisted"].append(_entity(after))
        elif before is not None and after is not None and before["hash"] != after["hash"]:
            result["changed"].append(_change(before, after))
    result["from"]["parser"], result["to"]["parser"] = reader_a, reader_b
    return result


def _rereads(
    db: Database, source: str, kind: str, run: Run, parser: str | None
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The reading that answers for `run`, and its rereads there by key."""
    try:
        reader = reading_parser(db, run.run_id, parser)
    except UnknownReadingError as exc:
        raise QueryError(str(exc)) from exc
    if reader is None:
        return run.parser_version or CRAWL, {}
    return reader, overlay(db, source, kind, run.seq, reader)


def _at(
    db: Database,
    source: str,
    kind: str,
    key: str,
    seq: int,
    crawled: dict[str, Any] | None,
    reread: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """One entity in run `seq` as its reading has it (None: not listed then)."""
    if crawled is None:  # not among the versions that changed between the runs: look it up
        crawled = next(
            (
                d
                for d in db[versions_collection(kind)].find({"source": source, "key": key}, FIELDS)
                if d["valid_from_seq"] <= seq < d["valid_to_seq"]
            ),
            None,
        )
    if reread is None:
        return crawled
    if reread["content"] is None:
        return None
    content = to_bson(reread["content"])
    base = crawled or {"key": key, "v": None, "first_seen_run": None}
    return {**base, "content": content, "hash": content_hash(content)}


def _entity(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": doc["key"],
        "version": doc["v"],
        "first_seen_run": doc["first_seen_run"],
        "content": from_bson(doc["content"]),
    }


def _change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    old, new = from_bson(before["content"]), from_bson(after["content"])
    fields = sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))
    return {
        "key": after["key"],
        "version_from": before["v"],
        "version_to": after["v"],
        "fields": fields,
        "before": {name: old.get(name) for name in fields},
        "after": {name: new.get(name) for name in fields},
        "content": new,
    }
