"""One run per source: the lease, against the real MongoDB wire server and real processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pymongo
import pytest

from pipelines.store.leases import LeaseHeldError, SourceLease, current_holder, reap_dead_holder

if TYPE_CHECKING:
    from pymongo.database import Database

    from pipelines.store.archive import Archive
    from pipelines.store.embedded import EmbeddedMongo

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_held_lease_refuses_a_second_holder_and_names_the_first(db: Database) -> None:
    first = SourceLease(db, "mkt")
    first.acquire()
    first.attach_run("mkt:000007")
    second = SourceLease(db, "mkt")
    with pytest.raises(
        LeaseHeldError, match=r"source mkt is being crawled by run mkt:000007 \(pid"
    ):
        second.acquire()
    SourceLease(db, "other").acquire()  # another source is free
    first.release()
    second.acquire()
    holder = current_holder(db, "mkt")
    assert holder is not None and holder.owner == second.owner


def test_a_dead_holder_on_this_host_is_taken_over_at_once_and_its_run_interrupted(
    archive: Archive, db: Database
) -> None:
    crashed = SourceLease(db, "mkt")
    crashed.acquire()
    run = archive.open_run("mkt", parser_version="p", started_at=T0)
    crashed.attach_run(run.run_id)
    dead = _dead_pid()
    db.leases.update_one({"_id": "mkt"}, {"$set": {"pid": dead}})  # its process is gone

    SourceLease(db, "mkt").acquire()  # long before the lease would expire
    doc = db.runs.find_one({"_id": run.run_id})
    assert doc["status"] == "interrupted"
    assert doc["reasons"] == [
        f"interrupted: its crawler (pid {dead} on {crashed_host(db)}) is gone"
    ]
    assert db.run_events.find_one({"run": run.run_id, "kind": "interrupted"}) is not None


def crashed_host(db: Database) -> str:
    holder = current_holder(db, "mkt")
    assert holder is not None
    return holder.host


def test_an_expired_lease_of_another_host_is_taken_over(archive: Archive, db: Database) -> None:
    run = archive.open_run("mkt", parser_version="p", started_at=T0)
    live = datetime.now(UTC) + timedelta(seconds=60)
    db.leases.insert_one(
        {"_id": "mkt", "owner": "x", "host": "elsewhere", "pid": 1, "run": run.run_id,
         "expires_at": live}
    )  # fmt: skip
    with pytest.raises(LeaseHeldError, match="pid 1 on elsewhere"):
        SourceLease(db, "mkt").acquire()  # alive as far as anyone here can tell
    past = datetime.now(UTC) - timedelta(seconds=5)
    db.leases.update_one({"_id": "mkt"}, {"$set": {"expires_at": past}})
    assert "stopped renewing its lease" in (reap_dead_holder(db, "mkt") or "")
    assert db.runs.find_one({"_id": run.run_id})["status"] == "interrupted"
    SourceLease(db, "mkt").acquire()


def test_a_running_run_nobody_holds_is_closed_when_the_lease_is_taken(
    archive: Archive, db: Database
) -> None:
    """A crawler that died before naming its run on a lease (or before leases existed)."""
    run = archive.open_run("mkt", parser_version="p", started_at=T0)
    SourceLease(db, "mkt").acquire()
    assert db.runs.find_one({"_id": run.run_id})["status"] == "interrupted"


def test_a_lease_taken_over_is_lost_by_its_old_holder(db: Database) -> None:
    stalled = SourceLease(db, "mkt", ttl=0.3)
    stalled.acquire()
    lost = threading.Event()
    db.leases.update_one({"_id": "mkt"}, {"$set": {"owner": "someone-else"}})
    stalled.keep_renewed(lambda reason: lost.set())
    assert lost.wait(5)
    assert stalled.lost == "the lease on source mkt was taken over by another crawl"
    stalled.release()
    assert current_holder(db, "mkt") is not None, "release never frees someone else's lease"


def test_renewal_keeps_a_short_lease_alive(db: Database) -> None:
    lease = SourceLease(db, "mkt", ttl=0.6)
    lease.acquire()
    lease.keep_renewed(lambda reason: None)
    threading.Event().wait(1.5)  # more than two TTLs
    with pytest.raises(LeaseHeldError):
        SourceLease(db, "mkt").acquire()
    lease.release()
    assert current_holder(db, "mkt") is None


def test_racing_holders_get_exactly_one_grant(mongo_server: EmbeddedMongo, db: Database) -> None:
    """Eight clients ask at once, twenty times over: one grant per round, never two."""
    clients = [pymongo.MongoClient(mongo_server.uri, tz_aware=True) for _ in range(8)]
    try:
        for round_ in range(20):
            source = f"race{round_}"
            barrier = threading.Barrier(len(clients))
            granted: list[int] = []

            def contend(
                i: int,
                source: str = source,
                barrier: threading.Barrier = barrier,
                granted: list[int] = granted,
            ) -> None:
                lease = SourceLease(clients[i][db.name], source)
                barrier.wait()
                try:
                    lease.acquire()
                    granted.append(i)
                except LeaseHeldError:
                    pass

            threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(clients))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(granted) == 1, (round_, granted)
    finally:
        for client in clients:
            client.close()
