"""One run per source at a time: a lease in MongoDB, so it holds across processes and machines.

A crawl takes its source's lease before it opens a run and renews it while it lives. A
second crawl is refused with the holder's name. A holder that died is detected at once on
its own host (its PID is gone) and elsewhere when its lease expires; its run is then
closed as `interrupted`, so nothing stays `running` for ever. The lease document's `_id`
is the source id: the unique key is what makes the conditional upsert a safe race
(../shared/notes/components-checked.md: 0 double grants in 1,200 races).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from pipelines.store.runs import mark_interrupted
from pipelines.store.schema import LEASES, RUNS
from pipelines.store.service import pid_alive

if TYPE_CHECKING:
    from collections.abc import Callable

    from pymongo.database import Database

logger = logging.getLogger(__name__)

DEFAULT_TTL = 60.0


def _process_start(pid: int) -> str:
    """The kernel's start time of `pid`, so a reused PID is not taken for the holder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True)
class Holder:
    """Who holds a source's lease, as stored."""

    owner: str
    host: str
    pid: int
    pid_start: str
    run: str | None
    expires_at: datetime

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Holder:
        expires = doc["expires_at"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return cls(
            doc["owner"], doc["host"], doc["pid"], doc.get("pid_start", ""), doc.get("run"), expires
        )

    def describe(self) -> str:
        run = f"run {self.run}" if self.run else "a crawl that is opening its run"
        until = self.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{run} (pid {self.pid} on {self.host}, lease until {until})"

    def is_dead(self, now: datetime) -> str | None:
        """Why this holder is dead, or None while it may be alive."""
        if self.host == socket.gethostname():
            if not pid_alive(self.pid):
                return f"its crawler (pid {self.pid} on {self.host}) is gone"
            if self.pid_start and _process_start(self.pid) != self.pid_start:
                return f"its crawler (pid {self.pid} on {self.host}) is gone (PID reused)"
        if self.expires_at < now:
            return (
                f"its crawler (pid {self.pid} on {self.host}) stopped renewing its lease, "
                f"which expired at {self.expires_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        return None


class LeaseHeldError(RuntimeError):
    """Another crawl holds the source; the message names it."""

    def __init__(self, source: str, holder: Holder | None) -> None:
        self.source = source
        self.holder = holder
        who = holder.describe() if holder is not None else "another crawl"
        super().__init__(f"source {source} is being crawled by {who}")


def current_holder(db: Database, source: str) -> Holder | None:
    doc = db[LEASES].find_one({"_id": source})
    return Holder.from_doc(doc) if doc is not None else None


def reap_dead_holder(db: Database, source: str) -> str | None:
    """Close the run of a dead holder as `interrupted` and free its lease; the reason, if any.

    Only the run the dead holder named is touched, and only if the lease is still that
    holder's: a crawl starting meanwhile is never mistaken for the dead one.
    """
    holder = current_holder(db, source)
    why = holder.is_dead(datetime.now(UTC)) if holder is not None else None
    if holder is None or why is None:
        return None
    if db[LEASES].delete_one({"_id": source, "owner": holder.owner}).deleted_count != 1:
        return None
    logger.warning("source %s: %s; its lease is freed", source, why)
    if holder.run:
        mark_interrupted(db, holder.run, f"interrupted: {why}")
    return why


class SourceLease:
    """The lease of one source for this process: acquire, attach the run, renew, release."""

    def __init__(self, db: Database, source: str, *, ttl: float = DEFAULT_TTL) -> None:
        self.db = db
        self.source = source
        self.ttl = ttl
        self.owner = uuid.uuid4().hex
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _doc(self, now: datetime) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_start": _process_start(os.getpid()),
            "run": None,
            "acquired_at": now,
            "expires_at": now + timedelta(seconds=self.ttl),
        }

    def acquire(self) -> None:
        """Take the lease, or raise LeaseHeldError naming the live holder."""
        reap_dead_holder(self.db, self.source)
        now = datetime.now(UTC)
        try:
            self.db[LEASES].find_one_and_update(
                {"_id": self.source, "expires_at": {"$lt": now}},
                {"$set": self._doc(now)},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            raise LeaseHeldError(self.source, current_holder(self.db, self.source)) from None
        logger.info("lease on source %s taken (owner %s)", self.source, self.owner[:8])
        # Holding the lease, no other crawl of the source can be alive: a run still
        # `running` was left by a crash before it named itself on a lease.
        for run in self.db[RUNS].find({"source": self.source, "status": "running"}, {"_id": 1}):
            mark_interrupted(
                self.db, run["_id"], "interrupted: its crawler died (no live crawl held its source)"
            )

    def attach_run(self, run_id: str) -> None:
        """Name the run, so whoever finds this holder dead can close it."""
        self.db[LEASES].update_one(
            {"_id": self.source, "owner": self.owner}, {"$set": {"run": run_id}}
        )

    def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours (taken over while we stalled)."""
        expires = datetime.now(UTC) + timedelta(seconds=self.ttl)
        result = self.db[LEASES].update_one(
            {"_id": self.source, "owner": self.owner}, {"$set": {"expires_at": expires}}
        )
        return result.matched_count == 1

    def keep_renewed(self, on_lost: Callable[[str], None]) -> None:
        """Renew every third of the TTL in a thread; `on_lost(reason)` if the lease is lost."""

        def loop() -> None:
            while not self._stop.wait(self.ttl / 3):
                try:
                    if self.renew():
                        continue
                except PyMongoError as exc:  # the database is away: nobody can take it either
                    logger.warning("could not renew the lease on %s: %s", self.source, exc)
                    continue
                self.lost = f"the lease on source {self.source} was taken over by another crawl"
                logger.error("%s", self.lost)
                on_lost(self.lost)
                return

        self._thread = threading.Thread(target=loop, name=f"lease-{self.source}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and free the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.db[LEASES].delete_one({"_id": self.source, "owner": self.owner})
        except PyMongoError as exc:  # it expires by itself
            logger.warning("could not release the lease on %s: %s", self.source, exc)
