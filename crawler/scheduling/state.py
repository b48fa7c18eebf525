"""Each source's schedule state in MongoDB (`schedule`), so a restarted scheduler continues."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)

SCHEDULE = "schedule"
HISTORY_LIMIT = 50  # attempts kept per source


@dataclass
class Attempt:
    """One start of a source's crawl (or a start the schedule skipped), as history keeps it."""

    started_at: datetime
    outcome: str  # success, failure, refused, stopped (by the scheduler), skipped
    status: str  # complete, partial, failed, refused, interrupted… or why it was skipped
    finished_at: datetime | None = None
    exit_code: int | None = None
    run_id: str | None = None
    pid: int | None = None
    page_budget: int | None = None
    next_due: datetime | None = None
    args: list[str] = field(default_factory=list)  # after `darkarchive crawl <source>`
    message: str | None = None  # the crawl's own word on it ("darkarchive: refused: …")


@dataclass
class SourceState:
    """What the scheduler knows about one source; `_id` of its `schedule` document."""

    source: str
    next_due: datetime | None = None
    consecutive_failures: int = 0
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_exit_code: int | None = None
    last_status: str | None = None
    last_run_id: str | None = None
    running: dict[str, Any] | None = None  # {"pid", "started_at"} while a crawl runs
    resume_run: str | None = None  # a run we interrupted, to be resumed by the next crawl
    unsaved: list[Attempt] = field(default_factory=list)
    dirty: bool = False

    FIELDS = (
        "next_due",
        "consecutive_failures",
        "last_started",
        "last_finished",
        "last_exit_code",
        "last_status",
        "last_run_id",
        "running",
        "resume_run",
    )

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> SourceState:
        fields: dict[str, Any] = {k: doc[k] for k in cls.FIELDS if doc.get(k) is not None}
        return cls(source=doc["_id"], **fields)


class ScheduleStore:
    """Reads and writes the `schedule` collection. A failed write leaves the state dirty in
    memory and is tried again on the next tick; the scheduler never stops over it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.collection = db[SCHEDULE]

    def load(self) -> dict[str, SourceState]:
        return {doc["_id"]: SourceState.from_document(doc) for doc in self.collection.find()}

    def save(self, state: SourceState) -> None:
        """Write the state and push its unsaved attempts onto the capped history."""
        update: dict[str, Any] = {
            "$set": {name: getattr(state, name) for name in SourceState.FIELDS}
            | {"updated_at": datetime.now(UTC)}
        }
        if state.unsaved:
            attempts = [asdict(a) for a in state.unsaved]
            update["$push"] = {"history": {"$each": attempts, "$slice": -HISTORY_LIMIT}}
        self.collection.update_one({"_id": state.source}, update, upsert=True)
        state.unsaved.clear()
        state.dirty = False

    def history(self, source: str, limit: int) -> list[dict[str, Any]]:
        """The source's latest `limit` attempts, oldest first."""
        doc = self.collection.find_one({"_id": source}, {"history": {"$slice": -limit}})
        return list((doc or {}).get("history", []))[-limit:]

    def documents(self) -> dict[str, dict[str, Any]]:
        return {doc["_id"]: doc for doc in self.collection.find()}
