"""Read side: runs, exact per-run reconstruction, versions, delistings, feedback, bodies."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING

from pipelines.store.codec import from_bson
from pipelines.store.feedback import as_of
from pipelines.store.pages import load_body
from pipelines.store.rereads import reading_parser
from pipelines.store.run_entities import entities_in_run
from pipelines.store.schema import FEEDBACK, RUNS, versions_collection

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from pymongo.database import Database

logger = logging.getLogger(__name__)

__all__ = [
    "delisted",
    "feedback",
    "get_run",
    "latest_run",
    "load_body",
    "observed",
    "runs",
    "versions",
]


def runs(db: Database, source: str) -> list[dict[str, Any]]:
    """All runs of a source, oldest first."""
    return [from_bson(d) for d in db[RUNS].find({"source": source}).sort("seq", ASCENDING)]


def get_run(db: Database, run_id: str) -> dict[str, Any] | None:
    """One run document (Decimals restored), or None."""
    doc = db[RUNS].find_one({"_id": run_id})
    return from_bson(doc) if doc is not None else None


def _require_run(db: Database, run_id: str) -> dict[str, Any]:
    run = get_run(db, run_id)
    if run is None:
        raise KeyError(f"no run {run_id!r} in the archive")
    return run


def latest_run(
    db: Database, source: str, statuses: Sequence[str] = ("complete", "partial")
) -> dict[str, Any] | None:
    """The most recent run of a source with one of `statuses` (running runs are excluded)."""
    doc = next(
        iter(
            db[RUNS]
            .find({"source": source, "status": {"$in": list(statuses)}})
            .sort("seq", DESCENDING)
            .limit(1)
        ),
        None,
    )
    return from_bson(doc) if doc is not None else None


def observed(
    db: Database, run_id: str, kind: str, *, parser: str | None = None
) -> Iterator[dict[str, Any]]:
    """Each entity the run observed, with the content it had in that run, ordered by key.

    The version valid in run R is the one with valid_from_seq <= R.seq < valid_to_seq,
    found by equality lookups (valid_in_run.py), filtered by the run's observations.
    Where the run was reparsed, the newest parser's rereads replace what they changed
    (`parser` names another reading, `"crawl"` the crawl's own); each entity says which
    parser read it. Streamed in bounded memory, however large the run (run_entities.py).
    """
    run = _require_run(db, run_id)
    reader = reading_parser(db, run_id, parser)
    for entity, _ in entities_in_run(db, run, kind, reader=reader):
        yield entity


def versions(db: Database, source: str, kind: str, key: str) -> list[dict[str, Any]]:
    """Every version of one entity, oldest first."""
    cursor = db[versions_collection(kind)].find({"source": source, "key": key}).sort("v", ASCENDING)
    return [from_bson(d) for d in cursor]


def entity_history(db: Database, source: str, kind: str, key: str) -> list[dict[str, Any]]:
    """Versions of one entity, each with the runs (and their start times) bounding it.

    Answers "what did this listing cost in March?": the version whose `valid_from` is at
    or before a date and whose `valid_to` is after it (`None`: still current).
    """
    history = []
    found = versions(db, source, kind, key)
    named = sorted({v["valid_from_seq"] for v in found} | {v["valid_to_seq"] for v in found})
    started = {  # only the runs the versions name, by seq (the (source, seq) index)
        r["_id"]: r.get("started_at")
        for r in db[RUNS].find({"source": source, "seq": {"$in": named}}, {"started_at": 1})
    }
    for version in found:
        until = version.get("valid_to_run")
        history.append(
            {
                "kind": kind,
                "key": key,
                "version": version["v"],
                "valid_from_run": version["valid_from_run"],
                "valid_from_seq": version["valid_from_seq"],
                "valid_from": started.get(version["valid_from_run"]),
                "valid_to_run": until,
                "valid_to_seq": version["valid_to_seq"] if until else None,
                "valid_to": started.get(until) if until else None,
                "ended_by": version.get("end"),
                "parser_changed": version.get("parser_changed", False),
                "content": version["content"],
                "provenance": version["provenance"],
            }
        )
    return history


def delisted(db: Database, source: str, run_id: str, *, kind: str = "listing") -> list[str]:
    """Keys that run `run_id` delisted (it was complete and did not observe them)."""
    cursor = db[versions_collection(kind)].find(
        {"source": source, "valid_to_run": run_id, "end": "delisted"}, {"key": 1}
    )
    return sorted(d["key"] for d in cursor)


def feedback(db: Database, source: str, *, run_id: str | None = None) -> list[dict[str, Any]]:
    """Feedback entries of a source first seen at or before `run_id` (all when None), each
    as that run knew it: the same answer however many runs came after."""
    query: dict[str, Any] = {"source": source}
    seq: int | None = None
    if run_id is not None:
        seq = _require_run(db, run_id)["seq"]
        query["first_seq"] = {"$lt": seq + 1}  # not `$lte`: see `observed`
    docs = [from_bson(as_of(d, seq)) for d in db[FEEDBACK].find(query)]
    docs.sort(key=lambda d: (d["listing_key"], d["date_earliest"], d["_id"]))
    return docs
