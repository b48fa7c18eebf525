"""Crawls left to run unattended: one per source, reads while crawling, stops and resumes.

Every crawl here is the real CLI in its own process against the fixture market over HTTP
and a real MongoDB wire server (the shared test server, or the embedded service).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
from exports import comparable_export
from subprocesses import processes_mentioning, run_cli, start_crawl, wait_for

from crawler.settings import (
    ARCHIVE_PAGE_BATCH,
    ARCHIVE_WRITER_QUEUE,
    CONCURRENT_REQUESTS,
    SCRAPER_SLOT_MAX_ACTIVE_SIZE,
)
from fixtures.server import FixtureServer
from pipelines.store.archive import Archive
from pipelines.store.runs import mark_interrupted

if TYPE_CHECKING:
    from pathlib import Path

    from pipelines.store.embedded import EmbeddedMongo

PAGES = 401  # the demo market on day 1


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", *args]


def _uri_env(mongo_server: EmbeddedMongo, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"unattended_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
    }


def _embedded_env(tmp_path: Path, idle: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "MONGODB_URI_FILE")}
    return {**env, "DARKARCHIVE_HOME": str(tmp_path / "home"), "DARKARCHIVE_DB_IDLE": str(idle)}


@pytest.mark.parametrize("database", ["mongodb_uri", "embedded"])
def test_a_second_crawl_of_a_source_is_refused_while_the_first_runs(
    database: str,
    mongo_server: EmbeddedMongo,
    reference: tuple[FixtureServer, list[Any]],
    tmp_path: Path,
) -> None:
    market, expected = reference
    env = (
        _uri_env(mongo_server, tmp_path)
        if database == "mongodb_uri"
        else _embedded_env(tmp_path, idle=0)
    )
    served = market.requests_served
    first = start_crawl(env, market.url)
    wait_for(lambda: market.requests_served - served > 20)
    second = subprocess.run(
        _cli("crawl", "demo", "--mirror", market.url), capture_output=True, text=True, env=env
    )
    assert second.returncode == 5, second.stdout + second.stderr
    assert "refused: source demo is being crawled by run demo:000001 (pid" in second.stdout
    assert f"pid {first.pid} on " in second.stdout
    assert "Traceback" not in second.stderr
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert market.requests_served - served == PAGES, "the refused crawl fetched nothing"
    runs = run_cli("runs", "demo", env=env).stdout.splitlines()
    assert [line.split()[0] for line in runs if line.startswith("demo:")] == ["demo:000001"]
    assert comparable_export("demo", market.url, env) == expected


def test_runs_exports_and_other_sources_work_during_a_crawl_on_the_embedded_database(
    reference: tuple[FixtureServer, list[Any]], tmp_path: Path
) -> None:
    market, expected = reference
    env = _embedded_env(tmp_path, idle=0)
    run_cli("crawl", "demo", "--mirror", market.url, env=env)
    served = market.requests_served
    slow = start_crawl(env, market.url, "-s", "DOWNLOAD_DELAY=0.05")
    wait_for(lambda: market.requests_served - served > 10)

    started = time.monotonic()
    runs = run_cli("runs", "demo", env=env).stdout
    runs_seconds = time.monotonic() - started
    assert "demo:000001  " in runs and "complete" in runs
    assert "demo:000002" in runs and "running" in runs
    assert comparable_export("demo", market.url, env, "--run", "demo:000001") == expected
    with FixtureServer(market="shop", day=1) as shop:
        other = run_cli("crawl", "shop", "--mirror", shop.url, env=env).stdout
    assert "run shop:000001: complete" in other
    assert slow.poll() is None, "the reads must have happened while the crawl ran"
    out, err = slow.communicate(timeout=300)
    assert slow.returncode == 0 and "run demo:000002: complete" in out, err[-3000:]
    print(f"`darkarchive runs` during a crawl: {runs_seconds:.2f} s")
    # The last client gone (idle timeout 0), the shared server stops: nothing left running.
    wait_for(lambda: not processes_mentioning(str(tmp_path / "home" / "mongo")), timeout=30)


def test_sigterm_stops_cleanly_and_resume_refetches_nothing(
    mongo_server: EmbeddedMongo, reference: tuple[FixtureServer, list[Any]], tmp_path: Path
) -> None:
    market, expected = reference
    env = _uri_env(mongo_server, tmp_path)
    served = market.requests_served
    crawl = start_crawl(env, market.url)
    wait_for(lambda: market.requests_served - served >= 150)
    crawl.send_signal(signal.SIGTERM)
    out, err = crawl.communicate(timeout=120)
    assert crawl.returncode == 6, out + err[-3000:]
    assert "run demo:000001: interrupted" in out
    assert "resume with: darkarchive crawl demo --resume demo:000001" in err
    first = market.requests_served - served
    with pymongo.MongoClient(mongo_server.uri) as client:
        db = client[env["DARKARCHIVE_DB"]]
        run = db.runs.find_one({"_id": "demo:000001"})
        assert run["status"] == "interrupted" and run["counts"]["pages"] < PAGES
        assert db.leases.count_documents({}) == 0, "a clean stop releases the lease"
        archived = db.pages.count_documents({"run": "demo:000001"})

    resumed = run_cli("crawl", "demo", "--mirror", market.url, "--resume", "demo:000001", env=env)
    assert "run demo:000001: complete" in resumed.stdout
    assert f"resumed: {archived} page(s) read back from the archive" in resumed.stdout
    fetched_twice = market.requests_served - served - PAGES
    print(f"SIGTERM after {first} requests: {archived} archived, fetched twice: {fetched_twice}")
    assert fetched_twice == 0
    _assert_as_uninterrupted(comparable_export("demo", market.url, env), expected)


def test_sigkill_leaves_no_server_and_the_next_command_closes_the_run_for_resume(
    reference: tuple[FixtureServer, list[Any]], tmp_path: Path
) -> None:
    market, expected = reference
    env = _embedded_env(tmp_path, idle=2)
    data = str(tmp_path / "home" / "mongo")
    served = market.requests_served
    crawl = start_crawl(env, market.url)
    wait_for(lambda: market.requests_served - served >= 250)
    crawl.kill()
    crawl.communicate(timeout=60)
    # Its server belonged to the shared service, which stops once idle: no orphan.
    wait_for(lambda: not processes_mentioning(data), timeout=30)
    # Counted only now: requests the dead crawl had sent reach the fixture's handler threads
    # a moment after the kill (they fail there with a broken pipe, yet count as served).
    before_kill = market.requests_served - served

    runs = run_cli("runs", "demo", env=env).stdout
    assert "interrupted" in runs and f"pid {crawl.pid}" in runs, runs
    with pymongo.MongoClient(_service_uri(tmp_path)) as client:
        db = client.darkarchive
        assert db.runs.find_one({"_id": "demo:000001"})["status"] == "interrupted"
        archived = db.pages.count_documents({"run": "demo:000001"})
    resumed = run_cli("crawl", "demo", "--mirror", market.url, "--resume", "demo:000001", env=env)
    assert "run demo:000001: complete" in resumed.stdout
    fetched_twice = market.requests_served - served - PAGES
    print(f"SIGKILL after {before_kill} requests: {archived} archived, twice: {fetched_twice}")
    # Exactly what was fetched but not yet archived when it died is fetched again ...
    assert fetched_twice == before_kill - archived
    # ... and that is no more than what was in flight: the requests in the downloader,
    # the responses waiting for the spider (at least 1 KB each in Scrapy's count), the pages
    # queued for the writer thread and one page bulk. With Scrapy's 5 MB scraper slot and
    # 1 s page bulks, a kill just after an entity batch (the reactor blocked for 2 s) left 20
    # to 70 pages to fetch again.
    in_flight = CONCURRENT_REQUESTS + SCRAPER_SLOT_MAX_ACTIVE_SIZE // 1024
    assert fetched_twice <= in_flight + ARCHIVE_WRITER_QUEUE + ARCHIVE_PAGE_BATCH, fetched_twice
    _assert_as_uninterrupted(comparable_export("demo", market.url, env), expected)


def _assert_as_uninterrupted(export: list[Any], expected: list[Any]) -> None:
    """The resumed run's export, counts included, is the uninterrupted run's (issue 10
    item 10: after a resume, `feedback_new` and the page counts once said 0)."""
    counts, truth = export[-1]["counts"], expected[-1]["counts"]
    assert counts["feedback_new"] == truth["feedback_new"] > 0
    assert counts["pages"] == truth["pages"] == PAGES
    assert _without_resumes(export) == expected


def _without_resumes(export: list[Any]) -> list[Any]:
    """The run's header says when it was resumed; everything else must be as uninterrupted."""
    *records, header = export
    return [*records, {k: v for k, v in header.items() if k != "resumed"}]


def _service_uri(tmp_path: Path) -> str:
    from pipelines.store.service import ServiceInfo

    info = ServiceInfo.read(tmp_path / "home" / "mongo")
    assert info is not None, "the shared server is not running"
    return info.uri


def test_resume_is_refused_for_a_finished_or_superseded_run(
    mongo_server: EmbeddedMongo, tmp_path: Path
) -> None:
    env = _uri_env(mongo_server, tmp_path)
    with pymongo.MongoClient(mongo_server.uri, tz_aware=True) as client:
        archive = Archive(client[env["DARKARCHIVE_DB"]])
        archive.ensure_indexes()
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        first = archive.open_run("demo", parser_version="p", started_at=now)
        mark_interrupted(archive.db, first.run_id, "interrupted: test")
        second = archive.open_run("demo", parser_version="p", started_at=now)
        archive.close_run(second, status="partial", counts={})
        complete = archive.open_run("shop", parser_version="p", started_at=now)
        archive.close_run(complete, status="complete", counts={})
    for run_id, why in (
        ("demo:000001", "the later run demo:000002 has superseded it"),
        (
            "demo:000002",
            "it is partial; only a running or interrupted run can be resumed "
            "(start a new run instead)",
        ),
        (  # issue 10 item 3: a complete day-2 run resumed on day 3 rewrote its history
            "shop:000001",
            "it is complete; only a running or interrupted run can be resumed "
            "(start a new run instead)",
        ),
        ("demo:000009", "no such run"),
    ):
        source = run_id.split(":")[0]
        result = subprocess.run(
            _cli("crawl", source, "--resume", run_id), capture_output=True, text=True, env=env
        )
        assert result.returncode == 5, result.stderr
        assert result.stderr.strip() == f"darkarchive: refused: cannot resume run {run_id}: {why}"
