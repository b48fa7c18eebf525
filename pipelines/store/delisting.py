"""Delisting: closing entities a complete run did not observe."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pymongo import UpdateOne

from pipelines.store.entities import version_id
from pipelines.store.schema import OPEN_SEQ, current_collection, versions_collection
from pipelines.store.valid_in_run import REOPEN, closing

if TYPE_CHECKING:
    from collections.abc import Set

    from pymongo.database import Database

    from pipelines.store.model import RunRef

logger = logging.getLogger(__name__)


def listed_entities(db: Database, source: str, kind: str) -> dict[str, int]:
    """Keys of a source's currently listed entities with their current version number."""
    cursor = db[current_collection(kind)].find(
        {"source": source, "status": "listed"}, {"key": 1, "v": 1}, batch_size=5000
    )
    return {d["key"]: d["v"] for d in cursor}


def delist_unobserved(db: Database, run: RunRef, kind: str, observed: Set[str]) -> int:
    """Close the open version and mark delisted every listed entity the run did not observe.

    Only called for complete runs: missing from a partial run means unobserved, not gone.
    Both updates are guarded, so closing the same run twice changes nothing.
    """
    listed = listed_entities(db, run.source, kind)
    gone = [(key, v) for key, v in listed.items() if key not in observed]
    if not gone:
        return 0
    ended = closing(run.seq, run.run_id, "delisted")  # with the run buckets it spans
    closes = [
        UpdateOne({"_id": version_id(run.source, k, v), "valid_to_seq": OPEN_SEQ}, ended)
        for k, v in gone
    ]
    marks = [
        UpdateOne(
            {"_id": f"{run.source}:{k}", "v": v, "status": "listed"},
            {"$set": {"status": "delisted", "delisted_run": run.run_id, "delisted_seq": run.seq}},
        )
        for k, v in gone
    ]
    db[versions_collection(kind)].bulk_write(closes, ordered=False)
    db[current_collection(kind)].bulk_write(marks, ordered=False)
    logger.info("run %s delisted %d %ss", run.run_id, len(gone), kind)
    return len(gone)


def undo_delisting(db: Database, run: RunRef, kind: str) -> int:
    """Relist what a run delisted when its close was cut off: an unfinished run delists
    nothing. Heads first, then versions, so a crash here is repaired by doing it again."""
    versions = db[versions_collection(kind)]
    closed = list(
        versions.find(
            {"source": run.source, "valid_to_run": run.run_id, "end": "delisted"},
            {"key": 1, "v": 1},
        )
    )
    if not closed:
        return 0
    db[current_collection(kind)].bulk_write(
        [
            UpdateOne(
                {"_id": f"{run.source}:{d['key']}", "v": d["v"], "delisted_run": run.run_id},
                {"$set": {"status": "listed"}, "$unset": {"delisted_run": "", "delisted_seq": ""}},
            )
            for d in closed
        ],
        ordered=False,
    )
    versions.bulk_write(
        [
            UpdateOne(
                {"_id": d["_id"], "valid_to_run": run.run_id, "end": "delisted"},
                REOPEN,
            )
            for d in closed
        ],
        ordered=False,
    )
    logger.warning(
        "run %s did not finish: relisted %d %ss it had delisted", run.run_id, len(closed), kind
    )
    return len(closed)
