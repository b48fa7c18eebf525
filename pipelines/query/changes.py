"""What changed between two runs: new, changed (which fields), delisted and relisted keys."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.query.runs import QueryError, resolve_run, source_runs
from pipelines.store.codec import from_bson
from pipelines.store.schema import versions_collection

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)

FIELDS = {"key": 1, "v": 1, "hash": 1, "content": 1, "first_seen_run": 1}
FIELDS |= {"valid_from_seq": 1, "valid_to_seq": 1, "end": 1}


def changes(
    db: Database, source: str, run_a: str, run_b: str, *, kind: str = "listing"
) -> dict[str, Any]:
    """The change set from run A to run B (A before B), read from the versions that ended
    or started between them: two index ranges whose size is the number of changes, never
    the size of the market.

    - `new`: listed in B, not in A, first seen after A;
    - `relisted`: listed in B, not in A, seen before (it had been delisted);
    - `delisted`: listed in A, not in B (only a complete run delists: an entity a partial
      run missed is still listed);
    - `changed`: listed in both with different content, with the fields that differ.
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
    seqs = {run.run_id: run.seq for run in source_runs(db, source)}
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
    for key in sorted(at_a.keys() | at_b.keys()):
        before, after = at_a.get(key), at_b.get(key)
        if after is None and before is not None:
            result["delisted"].append(_entity(before))
        elif before is None and after is not None:
            fresh = seqs.get(after["first_seen_run"], b.seq) > a.seq
            result["new" if fresh else "relisted"].append(_entity(after))
        elif before is not None and after is not None and before["hash"] != after["hash"]:
            result["changed"].append(_change(before, after))
    return result


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
