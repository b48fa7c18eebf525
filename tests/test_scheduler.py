"""The scheduler against the real database, with real child processes and real crawls.

`darkarchive scheduler` runs as the team runs it (its own process, the fixture markets on
loopback, the secantusdb wire server), and what it did is read back from the `schedule`
and `runs` collections and from its metrics endpoint.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import pytest
from subprocesses import pid_alive, run_cli

from crawler.scheduling.budget import pages_today
from crawler.scheduling.config import load_schedules
from crawler.scheduling.scheduler import Scheduler
from crawler.scheduling.state import HISTORY_LIMIT, Attempt, ScheduleStore, SourceState
from crawler.scheduling.timing import next_utc_midnight
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pymongo
    from pymongo.database import Database

    from pipelines.store.embedded import EmbeddedMongo


def closed_port() -> int:
    """A loopback port nothing listens on: a market mirror that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(mongo_server: EmbeddedMongo, tmp_path: Path) -> dict[str, str]:
    """The environment of a darkarchive process on its own database and home."""
    return {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"sched_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
        "DARKARCHIVE_SCHEDULES": str(tmp_path / "schedules.yaml"),
    }


@pytest.fixture
def env_db(env: dict[str, str], mongo_client: pymongo.MongoClient) -> Iterator[Database]:
    yield mongo_client[env["DARKARCHIVE_DB"]]
    mongo_client.drop_database(env["DARKARCHIVE_DB"])


def by_start(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(docs, key=lambda d: d["started_at"])


def gaps(attempts: list[dict[str, Any]]) -> list[float]:
    starts = [a["started_at"] for a in attempts]
    return [(b - a).total_seconds() for a, b in pairwise(starts)]


# -- the state machine, driven by real child processes ------------------------------------

# Stand-ins for `darkarchive crawl` that keep its exit-code contract (0 complete, 1 failed,
# 2 configuration error, 3 database unreachable, 4 partial, 5 refused, 6 interrupted) and
# print its summary line, so every code can be produced on demand.
CRAWL = "import sys; print(sys.argv[1]) if sys.argv[1] else None; sys.exit(int(sys.argv[2]))"


# (exit code, summary line printed, failures in a row after it, counted as, status, delay
# until next due): every 0.1 s, backoff ×2 capped at 0.5 s. Each row continues the story.
STORY = [
    (1, "run shop:000001: failed", 1, "failure", "failed", 0.2),
    (2, "", 2, "failure", "configuration error", 0.4),
    (5, "", 2, "refused", "refused", 0.4),  # refused: not a failure, no reset either
    (3, "", 3, "failure", "database unreachable", 0.5),  # capped
    (4, "run shop:000002: partial", 0, "success", "partial", 0.1),  # partial counts as a run
    (6, "run shop:000003: interrupted", 1, "failure", "interrupted", 0.2),
    (0, "run shop:000004: complete", 0, "success", "complete", 0.1),
]


def test_exit_codes_drive_backoff_and_history(db: Database, tmp_path: Path) -> None:
    """A new scheduler (`--once`) for each crawl, as after a restart: all it knows of the
    previous ones is what it reads back from the `schedule` collection."""
    path = tmp_path / "schedules.yaml"
    path.write_text(
        "backoff: {factor: 2, cap: 0.5s}\n"
        "sources: {shop: {every: 0.1s, mirror: 'http://127.0.0.1:1', args: [-s, A=1]}}\n"
    )
    last_run_id = None
    for code, line, failures, counted, status, delay in STORY:
        seen: list[list[str]] = []

        def command(
            source: str, args: list[str], line: str = line, code: int = code, seen: list = seen
        ) -> list[str]:
            seen.append([source, *args])
            return [sys.executable, "-c", CRAWL, line, str(code)]

        time.sleep(0.6)  # the previous crawl's backoff has passed: shop is due
        scheduler = Scheduler(
            load_schedules(path), db, env=os.environ, once=True, tick=0.1, command=command
        )
        assert scheduler.run() == (1 if counted == "failure" else 0), code

        assert seen == [["shop", "--mirror", "http://127.0.0.1:1", "-s", "A=1"]], code
        doc = db["schedule"].find_one({"_id": "shop"})
        assert doc is not None
        last = doc["history"][-1]
        assert (last["exit_code"], last["outcome"], last["status"]) == (code, counted, status)
        assert doc["consecutive_failures"] == failures, code
        assert (doc["last_exit_code"], doc["last_status"], doc["running"]) == (code, status, None)
        run_id = line.split(": ")[0].removeprefix("run ") or None
        assert last["run_id"] == run_id, code
        last_run_id = run_id or last_run_id  # a crawl without a run keeps the last one known
        assert doc.get("last_run_id") == last_run_id, code
        waited = (doc["next_due"] - doc["last_started"]).total_seconds()
        assert waited == pytest.approx(delay, abs=0.002), code
    assert len(db["schedule"].find_one({"_id": "shop"})["history"]) == len(STORY)  # type: ignore[index]


def test_history_is_capped_and_pages_are_counted_per_utc_day(db: Database) -> None:
    store = ScheduleStore(db)
    state = SourceState("demo", next_due=datetime.now(UTC))
    start = datetime(2026, 11, 30, tzinfo=UTC)
    for i in range(HISTORY_LIMIT + 10):
        state.unsaved.append(Attempt(start + timedelta(minutes=i), "success", f"n{i}"))
        store.save(state)
    assert not state.unsaved
    history = db["schedule"].find_one({"_id": "demo"})["history"]  # type: ignore[index]
    assert [a["status"] for a in history] == [f"n{i}" for i in range(10, HISTORY_LIMIT + 10)]
    assert [a["status"] for a in store.history("demo", 2)] == [
        f"n{HISTORY_LIMIT + 8}",
        f"n{HISTORY_LIMIT + 9}",
    ]
    assert store.load()["demo"].next_due is not None

    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    db["runs"].insert_many(
        [
            {"source": "demo", "started_at": now - timedelta(hours=13), "counts": {"pages": 500}},
            {"source": "demo", "started_at": now - timedelta(hours=11), "counts": {"pages": 40}},
            {"source": "demo", "started_at": now - timedelta(hours=1), "counts": {"pages": 2}},
            {"source": "demo", "started_at": now, "status": "running"},  # no counts yet
            {"source": "shop", "started_at": now, "counts": {"pages": 900}},
        ]
    )
    assert pages_today(db, "demo", now) == 42


# -- the real command ---------------------------------------------------------------------


def test_once_runs_what_is_due_one_at_a_time_within_the_page_budget(
    env: dict[str, str], env_db: Database, tmp_path: Path
) -> None:
    """`scheduler --once` (cron's way): both sources due, one crawl at a time; the shop's
    crawl is cut at its daily page budget and the next day waits for tomorrow."""
    with (
        FixtureServer(market="classic", day=1) as classic,
        FixtureServer(market="shop", day=1) as shop,
    ):
        (tmp_path / "schedules.yaml").write_text(
            f"""
max_concurrent: 1
sources:
  classic: {{every: 1h, mirror: "{classic.url}"}}
  shop: {{every: 1s, mirror: "{shop.url}", daily_page_budget: 30}}
"""
        )
        first = run_cli("scheduler", "--once", "--tick", "0.2", env=env)
        time.sleep(1.5)  # shop is due again; classic is not
        second = run_cli("scheduler", "--once", "--tick", "0.2", env=env)

    runs = by_start(list(env_db["runs"].find()))
    assert sorted(r["source"] for r in runs) == ["classic", "shop"], first.stderr[-3000:]
    assert runs[0]["finished_at"] <= runs[1]["started_at"]  # max_concurrent: 1
    shop_run = next(r for r in runs if r["source"] == "shop")
    assert shop_run["status"] == "partial"
    assert "crawl stopped early: closespider_pagecount" in shop_run["reasons"]
    assert 30 <= shop_run["counts"]["pages"] < 100  # the market has 117 pages

    schedule = {doc["_id"]: doc for doc in env_db["schedule"].find()}
    shop_history = schedule["shop"]["history"]
    assert [a["outcome"] for a in shop_history] == ["success", "skipped"], second.stderr
    assert shop_history[0]["page_budget"] == 30  # -s CLOSESPIDER_PAGECOUNT=30
    assert shop_history[1]["status"].startswith("daily page budget spent (")
    assert schedule["shop"]["next_due"] == next_utc_midnight(datetime.now(UTC))
    assert len(schedule["classic"]["history"]) == 1  # not due at the second call

    shown = json.loads(run_cli("schedule", "show", "--format", "json", env=env).stdout)
    assert [s["source"] for s in shown] == ["classic", "shop"]
    assert shown[1]["recent_attempts"][-1]["outcome"] == "skipped"
    assert shown[0]["last_exit_code"] == 0 and shown[0]["last_run_id"] == "classic:000001"
    text = run_cli("schedule", "show", env=env).stdout
    assert "classic: every 1h" in text and "shop: every 1s, 30 pages a day" in text
    assert "consecutive failures: 0" in text and "skipped" in text


def test_scheduler_end_to_end(env: dict[str, str], env_db: Database, tmp_path: Path) -> None:
    """Two markets every 20 s (jitter 3 s) and a source whose mirror is down every 3 s,
    backed off ×1.5 up to 12 s; metrics over HTTP; SIGTERM while a crawl runs."""
    metrics_port = closed_port()
    with (
        FixtureServer(market="classic", day=1) as classic,
        FixtureServer(market="shop", day=1) as shop,
    ):
        (tmp_path / "schedules.yaml").write_text(
            f"""
max_concurrent: 3
backoff: {{factor: 1.5, cap: 12s}}
sources:
  classic: {{every: 20s, jitter: 3s, mirror: "{classic.url}"}}
  shop: {{every: 20s, jitter: 3s, mirror: "{shop.url}"}}
  grid:
    every: 3s
    mirror: "http://127.0.0.1:{closed_port()}"
    args: ["-s", "RETRY_TIMES=0"]
"""
        )
        log = (tmp_path / "scheduler.log").open("w")
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "--log-level", "INFO", "scheduler",
             "--tick", "0.5", "--metrics-port", str(metrics_port), "--stop-grace", "15"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            running = _wait_for_third_crawl(env_db, "classic", scheduler, deadline=80)
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as answer:
                metrics = answer.read().decode()
            stopping = time.monotonic()
            scheduler.send_signal(signal.SIGTERM)
            assert scheduler.wait(timeout=60) == 0
            stopped_in = time.monotonic() - stopping
        finally:
            if scheduler.poll() is None:  # the test failed: leave no crawl behind
                scheduler.kill()
                scheduler.wait()
                _kill_running_crawls(env_db)
            log.close()
        schedule = {doc["_id"]: doc for doc in env_db["schedule"].find()}
        runs = list(env_db["runs"].find())
        # Restarted (from cron, say): what was due when it stopped runs now, and the run
        # it interrupted is resumed rather than begun again.
        restart = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "scheduler",
             "--once", "--tick", "0.5"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    output = (tmp_path / "scheduler.log").read_text()
    assert stopped_in < 30, output[-3000:]
    assert not pid_alive(running["pid"])
    assert "scheduler stopped" in output
    for source in ("classic", "shop"):
        attempts = [a for a in schedule[source]["history"] if a["outcome"] == "success"]
        assert len(attempts) >= 2, output[-3000:]
        for gap in gaps(attempts):  # last start + 20 s + jitter in [0, 3], noticed within a tick
            assert 20 <= gap <= 23 + 1.0, (source, gaps(attempts))
        # The runs themselves: started on time, never two at once.
        closed = by_start([r for r in runs if r["source"] == source])
        for before, after in pairwise(closed):
            assert before["finished_at"] <= after["started_at"], (source, before, after)
            assert 17 <= (after["started_at"] - before["started_at"]).total_seconds() <= 28

    # The classic crawl running at SIGTERM was asked to stop; it is not counted as a failure.
    stopped = schedule["classic"]["history"][-1]
    assert stopped["pid"] == running["pid"]
    assert (stopped["outcome"], stopped["status"]) == ("stopped", "interrupted"), stopped
    assert schedule["classic"]["consecutive_failures"] == 0
    assert schedule["classic"]["running"] is None
    assert schedule["classic"]["resume_run"] == stopped["run_id"]
    assert restart.returncode in {0, 1}, restart.stderr[-3000:]  # 1: grid failed again
    resumed = env_db["schedule"].find_one({"_id": "classic"})["history"][-1]  # type: ignore[index]
    assert resumed["args"][-2:] == ["--resume", stopped["run_id"]], restart.stderr[-3000:]
    assert (resumed["outcome"], resumed["run_id"]) == ("success", stopped["run_id"]), resumed

    # The source that is down: every attempt failed, each gap the last one ×1.5, up to 12 s.
    failed = schedule["grid"]["history"]
    assert {a["outcome"] for a in failed} <= {"failure", "stopped"}
    failed = [a for a in failed if a["outcome"] == "failure"]
    assert len(failed) >= 5 and schedule["grid"]["consecutive_failures"] >= 5
    expected = [min(3 * 1.5**n, 12) for n in range(1, len(failed))]
    for gap, want, previous in zip(gaps(failed), expected, failed, strict=False):
        took = (previous["finished_at"] - previous["started_at"]).total_seconds()
        assert want - 0.01 <= gap <= max(want, took) + 1.0, (gaps(failed), expected)
    assert gaps(failed)[-1] > gaps(failed)[0] + 5

    # Scraped while it ran: the scheduler's gauges (and the archive's, when present).
    assert 'darkarchive_schedule_last_exit_code{source="classic"} 0.0' in metrics
    assert 'darkarchive_schedule_last_exit_code{source="grid"} 1.0' in metrics
    failures = _gauge(metrics, "darkarchive_schedule_consecutive_failures", "grid")
    assert failures >= 4
    due = _gauge(metrics, "darkarchive_schedule_next_due_timestamp_seconds", "shop")
    assert abs(due - time.time()) < 60
    if importlib.util.find_spec("pipelines.metrics") is not None:  # served beside ours
        assert 'darkarchive_last_run_status{source="grid",status="failed"} 1.0' in metrics


def _wait_for_third_crawl(
    db: Database, source: str, scheduler: subprocess.Popen[bytes], deadline: float
) -> dict[str, Any]:
    """The `running` entry of the source's third crawl, once it has opened its run."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        assert scheduler.poll() is None, "the scheduler exited"
        doc = db["schedule"].find_one({"_id": source}) or {}
        running = doc.get("running")
        # Once its run is open, the crawl has its signal handlers: SIGTERM closes the run.
        if (
            len(doc.get("history", [])) >= 2
            and running
            and db["runs"].find_one(
                {
                    "source": source,
                    "status": "running",
                    "started_at": {"$gte": running["started_at"]},
                }
            )
        ):
            return dict(running)
        time.sleep(0.1)
    raise AssertionError(f"no third crawl of {source} within {deadline} s")


def _kill_running_crawls(db: Database) -> None:
    """The crawls a killed scheduler left (each has a session of its own), by PID."""
    for doc in db["schedule"].find({"running": {"$ne": None}}):
        with contextlib.suppress(ProcessLookupError):
            os.kill(doc["running"]["pid"], signal.SIGKILL)


def _gauge(metrics: str, name: str, source: str) -> float:
    prefix = f'{name}{{source="{source}"}} '
    line = next(line for line in metrics.splitlines() if line.startswith(prefix))
    return float(line.removeprefix(prefix))
