"""The archive's writer thread: the crawl never waits on the database, and nothing is lost.

The writer is driven directly (its answers carried back through a queue instead of the
reactor) for order and failures; the crawl test stops the real database server (SIGSTOP)
mid-crawl and makes it refuse one real write, through the real CLI and fixture market.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import pymongo
from subprocesses import start_crawl, wait_for
from twisted.python.failure import Failure

from pipelines.store.writer_thread import WriterStoppedError, WriterThread

if TYPE_CHECKING:
    from pathlib import Path

    from fixtures.server import FixtureServer
    from pipelines.store.embedded import EmbeddedMongo

PAGES = 401  # the demo market on day 1
REFUSED_LISTING = "l10377"  # one listing of the demo market on day 1


class Answers:
    """Stands in for the reactor thread: answers queue up and run where the test says."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[tuple[Any, tuple[Any, ...]]] = queue.SimpleQueue()

    def call_from_thread(self, fn: Any, *args: Any) -> None:
        self.calls.put((fn, args))

    def run(self, count: int) -> None:
        for _ in range(count):
            fn, args = self.calls.get(timeout=30)
            fn(*args)


def test_writes_run_in_order_on_one_thread_and_a_failure_reaches_its_caller() -> None:
    answers = Answers()
    writer = WriterThread("test-writer", call_from_thread=answers.call_from_thread).start()
    ran: list[tuple[int, str]] = []
    results: list[Any] = []

    def write(n: int) -> int:
        ran.append((n, threading.current_thread().name))
        if n == 3:
            raise ValueError(f"document {n} refused")
        return n * 10

    for n in range(6):
        writer.submit(write, n).addBoth(results.append)
    assert writer.pending == 6
    answers.run(6)
    writer.stop(timeout=10)
    assert ran == [(n, "test-writer") for n in range(6)]
    assert writer.pending == 0
    failure = results.pop(3)
    assert isinstance(failure, Failure) and failure.check(ValueError)
    assert str(failure.value) == "document 3 refused"
    assert results == [0, 10, 20, 40, 50], "the thread goes on after a failure"
    late: list[Any] = []
    writer.submit(write, 9).addErrback(late.append)
    assert late[0].check(WriterStoppedError) and len(ran) == 6


def test_once_its_queue_is_empty_the_writer_runs_its_idle_write_after_the_last_write() -> None:
    """Pages queued for a bulk are written when the writer has nothing else to do, not
    only when the next page comes (a crawl's last pages, a slow market)."""
    answers = Answers()
    calls: list[str] = []
    idle = threading.Event()

    def on_idle() -> None:
        calls.append("idle")
        idle.set()

    writer = WriterThread(
        "test-idle", on_idle=on_idle, idle_after=0.01, call_from_thread=answers.call_from_thread
    ).start()
    writer.submit(calls.append, "page")
    assert idle.wait(timeout=30)
    writer.stop(timeout=10)
    answers.run(1)
    assert calls == ["page", "idle"], "once per quiet spell, after the work"


def test_a_stalled_database_does_not_stop_fetching_and_a_refused_write_is_recorded(
    mongo_server: EmbeddedMongo, reference: tuple[FixtureServer, list[Any]], tmp_path: Path
) -> None:
    market, _ = reference
    name = "writer_thread"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
    }
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    client.drop_database(name)  # left by an interrupted session, if any
    db = client[name]
    # The server refuses one listing's version: a real write error on the writer thread.
    db.create_collection("listing_versions", validator={"key": {"$ne": REFUSED_LISTING}})
    assert mongo_server.pid is not None
    served = market.requests_served
    queue_size = 100
    crawl = start_crawl(env, market.url, "-s", f"ARCHIVE_WRITER_QUEUE={queue_size}")
    try:
        wait_for(lambda: market.requests_served - served >= 30)
        os.kill(mongo_server.pid, signal.SIGSTOP)
        stopped_at, stopped_since = market.requests_served, time.monotonic()
        try:
            # Writes on the reactor thread let at most the requests in flight (8) and one
            # page bulk (10) through until pymongo gives up on the server (an outage); the
            # writer thread lets a queue of pages through at once.
            wait_for(lambda: market.requests_served - stopped_at >= queue_size // 2, 120)
        finally:
            os.kill(mongo_server.pid, signal.SIGCONT)
        stalled = f"{market.requests_served - stopped_at} page(s) fetched while the database "
        print(stalled + f"was stopped for {time.monotonic() - stopped_since:.1f} s")
        out, err = crawl.communicate(timeout=300)
    finally:
        if crawl.poll() is None:
            crawl.kill()
            crawl.communicate()
    try:
        assert crawl.returncode == 4, out + err[-3000:]  # partial: one write refused
        assert "run demo:000001: partial" in out
        assert market.requests_served - served == PAGES, "every page fetched once"
        run = db.runs.find_one({"_id": "demo:000001"})
        assert "1 write(s) to the archive failed (run events)" in run["reasons"]
        # With writes on the reactor thread the crawl stood still until pymongo gave up on
        # the stopped server (20 s) and spooled; here it never waited on it at all.
        unreachable = {"kind": "archive", "reason": {"$regex": "unreachable"}}
        assert db.run_events.count_documents(unreachable) == 0, "no outage: no wait"
        (event,) = db.run_events.find({"run": "demo:000001", "kind": "archive"})
        assert event["detail"]["key"] == REFUSED_LISTING
        assert "Document failed validation" in event["reason"]
        assert event["url"].endswith(f"/listing/{REFUSED_LISTING}")
        assert db.pages.count_documents({"run": "demo:000001"}) == PAGES
        assert db.listings.count_documents({}) == 339
    finally:
        client.drop_database(name)
        client.close()
