"""Run lifecycle: sequence numbers, run documents, rates, events and per-source summaries."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from pipelines.store.codec import from_bson, sha256_text, to_bson
from pipelines.store.delisting import undo_delisting
from pipelines.store.entities import drop_orphans
from pipelines.store.model import RunRef
from pipelines.store.schema import KINDS, RUN_EVENTS, RUNS, SOURCES
from pipelines.store.valid_in_run import SPAN

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pymongo.database import Database

logger = logging.getLogger(__name__)

CLOSED_STATUSES = ("complete", "partial", "failed", "interrupted")
# A run that did not finish (stopped, or its crawler died) can be continued; a finished one
# is history, and resuming it would rewrite what it saw.
RESUMABLE_STATUSES = ("running", "interrupted")


def run_id_for(source: str, seq: int) -> str:
    """Run ids sort with their sequence and name their source: `"<source>:000042"`."""
    return f"{source}:{seq:06d}"


def open_run(
    db: Database,
    source: str,
    *,
    parser_version: str,
    started_at: datetime,
    config: Mapping[str, Any] | None = None,
) -> RunRef:
    """Start a new run with the next seq of its source (an atomic counter, safe across crawlers)."""
    if not source or ":" in source:
        raise ValueError(f"source id {source!r} must be non-empty and contain no ':'")
    counter = db[SOURCES].find_one_and_update(
        {"_id": source},
        # A new source has no versions yet: every one it closes will carry its `spans`.
        {"$inc": {"seq": 1}, "$setOnInsert": {"created_at": datetime.now(UTC), "spans": SPAN}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    if counter is None:  # cannot happen with upsert + AFTER; keeps the type checker honest
        raise RuntimeError(f"sequence counter for {source!r} was not created")
    seq = int(counter["seq"])
    run = RunRef(run_id=run_id_for(source, seq), source=source, seq=seq)
    db[RUNS].insert_one(
        {
            "_id": run.run_id,
            "source": source,
            "seq": seq,
            "status": "running",
            "parser_version": parser_version,
            "started_at": to_bson(started_at),
            "config": to_bson(dict(config or {})),
            "rates": {},
        }
    )
    logger.info("opened run %s (parser %s)", run.run_id, parser_version)
    return run


class ResumeRefusedError(ValueError):
    """`--resume` named a run that cannot be continued; the message says why, in one line."""


def mark_interrupted(db: Database, run_id: str, reason: str) -> bool:
    """Close a run that stopped without finishing (a signal, or its crawler died).

    Its counts stay as the crawl last wrote them; nothing is delisted; it can be resumed.
    """
    doc = db[RUNS].find_one({"_id": run_id, "status": "running"}, {"source": 1, "seq": 1})
    if doc is None:
        return False
    settle_unfinished(db, RunRef(run_id=run_id, source=doc["source"], seq=int(doc["seq"])))
    result = db[RUNS].update_one(
        {"_id": run_id, "status": "running"},
        {
            "$set": {"status": "interrupted", "finished_at": datetime.now(UTC)},
            "$push": {"reasons": reason},
        },
    )
    if result.modified_count != 1:
        return False
    run = RunRef(run_id=run_id, source=doc["source"], seq=int(doc["seq"]))
    record_event(db, run, kind="interrupted", reason=reason)
    db[SOURCES].update_one(
        {"_id": run.source, "last_run": {"$in": [run_id, None]}},
        {"$set": {"last_run": run_id, "last_status": "interrupted"}},
    )
    logger.warning("run %s closed as interrupted: %s", run_id, reason)
    return True


def resumable_run(db: Database, run_id: str, *, source: str) -> dict[str, Any]:
    """The run document of `run_id` if it may be continued, else ResumeRefusedError.

    Refused when a later run of the source exists: versions are ordered by seq, so writing
    into an earlier run after a later one has started would make history contradict itself.
    Refused for a finished run: its record is history, and past runs are immutable.
    """
    doc = db[RUNS].find_one({"_id": run_id})
    if doc is None:
        raise ResumeRefusedError(f"cannot resume run {run_id}: no such run")
    if doc["source"] != source:
        raise ResumeRefusedError(
            f"cannot resume run {run_id} as source {source}: it is a run of {doc['source']}"
        )
    later = db[RUNS].find_one({"source": source, "seq": {"$gt": doc["seq"]}}, {"_id": 1})
    if later is not None:
        raise ResumeRefusedError(
            f"cannot resume run {run_id}: the later run {later['_id']} has superseded it"
        )
    if doc["status"] not in RESUMABLE_STATUSES:
        raise ResumeRefusedError(
            f"cannot resume run {run_id}: it is {doc['status']}; only a running or "
            "interrupted run can be resumed (start a new run instead)"
        )
    return doc


def resume_run(db: Database, run_id: str, *, source: str, started_at: datetime) -> RunRef:
    """Reopen an interrupted run so the resumed crawl writes into it idempotently."""
    doc = resumable_run(db, run_id, source=source)
    settle_unfinished(db, RunRef(run_id=run_id, source=source, seq=int(doc["seq"])))
    db[RUNS].update_one(
        {"_id": run_id},
        {
            "$set": {"status": "running"},
            "$push": {"resumed": {"at": to_bson(started_at), "previous_status": doc["status"]}},
        },
    )
    logger.info("resumed run %s (was %s)", run_id, doc["status"])
    return RunRef(run_id=run_id, source=source, seq=int(doc["seq"]))


def settle_unfinished(db: Database, run: RunRef) -> None:
    """Undo what a run's cut-off writes left half done, before it is closed or resumed.

    A crawler killed mid-write can leave versions it never made current, and one killed
    while closing can have delisted part of the market; an unfinished run delists nothing
    and its versions must never overlap. Idempotent: a crash here is repaired by a rerun.
    """
    for kind in KINDS:
        drop_orphans(db, run.source, run.run_id, kind)
        undo_delisting(db, run, kind)


def record_rates(db: Database, run: RunRef, rates: Mapping[str, Mapping[str, Any]]) -> None:
    """Keep the first rate seen per currency; later different values are kept as observations.

    USD values are computed at export from these fetch-time rates, so nothing per entity
    is written per run.
    """
    doc = db[RUNS].find_one({"_id": run.run_id}, {"rates": 1}) or {}
    known = from_bson(doc.get("rates") or {})
    for currency, rate in rates.items():
        code = _currency_field(currency)
        value = {k: v for k, v in rate.items() if k != "observations"}
        stored = known.get(code)
        if stored is None:
            db[RUNS].update_one(
                {"_id": run.run_id, f"rates.{code}": {"$exists": False}},
                {"$set": {f"rates.{code}": to_bson(value)}},
            )
            known[code] = value
        elif stored.get("value") != value.get("value"):
            seen = [o.get("value") for o in stored.get("observations", [])]
            if value.get("value") not in seen:
                db[RUNS].update_one(
                    {"_id": run.run_id},
                    {"$push": {f"rates.{code}.observations": to_bson(value)}},
                )
                stored.setdefault("observations", []).append(value)


def _currency_field(currency: str) -> str:
    code = currency.strip().upper()
    if not code or "." in code or code.startswith("$"):
        raise ValueError(f"invalid currency code {currency!r}")
    return code


def record_event(
    db: Database,
    run: RunRef,
    *,
    kind: str,
    reason: str,
    url: str | None = None,
    state: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Log why something went wrong or was skipped, where a researcher can read it.

    The id is derived from what happened, so a resumed run or a replayed page records the
    same event once, and the run's counter only moves for a new one.
    """
    event_id = sha256_text(run.run_id, kind, url or "", state or "", reason)
    try:
        db[RUN_EVENTS].insert_one(
            {
                "_id": event_id,
                "run": run.run_id,
                "source": run.source,
                "kind": kind,
                "reason": reason,
                "url": url,
                "state": state,
                "detail": to_bson(dict(detail or {})),
                "at": datetime.now(UTC),
            }
        )
    except DuplicateKeyError:
        return
    db[RUNS].update_one({"_id": run.run_id}, {"$inc": {f"events.{kind}": 1}})


def finish_run(
    db: Database,
    run: RunRef,
    *,
    status: str,
    counts: Mapping[str, Any],
    reasons: Sequence[str],
    extra: Mapping[str, Any] | None = None,
    listed: Mapping[str, int] | None = None,
) -> None:
    """Write the run's final status and counters, and the source's summary.

    The summary keeps the current number of listed entities per kind, so "how big is this
    market now" never needs a count over the collections.
    """
    if status not in CLOSED_STATUSES:
        raise ValueError(f"run status must be one of {CLOSED_STATUSES}, not {status!r}")
    finished_at = datetime.now(UTC)
    db[RUNS].update_one(
        {"_id": run.run_id},
        {
            "$set": {
                "status": status,
                "finished_at": finished_at,
                "counts": to_bson(dict(counts)),
                "reasons": list(reasons),
                **to_bson(dict(extra or {})),
            }
        },
    )
    summary: dict[str, Any] = {
        "last_run": run.run_id,
        "last_status": status,
        "last_finished_at": finished_at,
    }
    if status == "complete":
        summary["last_complete_run"] = run.run_id
    for kind, n in (listed or {}).items():
        summary[f"listed.{kind}"] = n
    db[SOURCES].update_one({"_id": run.source}, {"$set": summary})
    logger.info("closed run %s as %s", run.run_id, status)
