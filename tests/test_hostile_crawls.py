"""The demo market turned hostile, crawled end to end by the CLI into the real archive.

Each behaviour comes from the fixture server (`fixtures/hostile.py`). The checks: the run
gets the status the situation deserves, with the reason; nothing from a challenge page is
archived as a listing (every archived listing is one of the market's, as the truth has
it); a session that expires mid-crawl pauses the source and delists nothing; storms of
429/503, queues, CAPTCHAs, slow and hanging responses, a dying mirror and a pagination
trap still end in a complete run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING, Any

import pymongo
import pytest

from crawler.sources.loader import DEFAULT_SOURCES_DIR
from fixtures.hostile import Hostility
from fixtures.market import truth
from fixtures.server import FixtureServer
from pipelines.store.queries import delisted

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymongo.database import Database

    from pipelines.store.embedded import EmbeddedMongo

SESSION = "s3cr3t-session-value"
FAST = ["-s", "CHALLENGE_BACKOFF_BASE=0.05", "-s", "CHALLENGE_BACKOFF_MAX=3"]


@pytest.fixture
def hostile_env(
    mongo_server: EmbeddedMongo, tmp_path: Path
) -> Iterator[tuple[dict[str, str], Database[Any]]]:
    """The CLI's environment; demo.yaml wants a session cookie from DEMO_SESSION."""
    sources = tmp_path / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, sources)
    demo = sources / "demo.yaml"
    demo.write_text(
        demo.read_text(encoding="utf-8")
        + "\nsession:\n  cookies:\n    session: {env: DEMO_SESSION}\n",
        encoding="utf-8",
    )
    name = f"hostile_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
        "DARKARCHIVE_SOURCES_DIR": str(sources),
        "DEMO_SESSION": SESSION,
    }
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    yield env, client[name]
    client.drop_database(name)
    client.close()


def _crawl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo", *args],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


def _latest_run(db: Database[Any]) -> dict[str, Any]:
    run = db.runs.find_one(sort=[("seq", -1)])
    assert run is not None
    return run


def _events(db: Database[Any], run: dict[str, Any], kind: str) -> list[str]:
    return [e["reason"] for e in db.run_events.find({"run": run["_id"], "kind": kind})]


def _only_true_listings(db: Database[Any], *days: int) -> set[str]:
    """Every archived listing is one the market really had: no challenge page became one."""
    keys = {d["key"] for d in db.listing_versions.find({}, {"key": 1})}
    real = {t["listing_id"] for day in days for t in truth("demo", day)["listings"]}
    assert keys <= real
    return keys


@pytest.mark.parametrize(
    ("hostility", "event", "expected"),
    [
        (Hostility(session_cookie=SESSION, queue_seconds=1.0), "DDoS queue: waiting", None),
        (Hostility(session_cookie=SESSION, rate_limit=(5, 40)), "rate_limited (HTTP 429", None),
        (Hostility(session_cookie=SESSION, unavailable=(5, 40)), "(HTTP 503", None),
        (Hostility(session_cookie=SESSION, captcha_every=40), "captcha (HTTP 200", None),
    ],
    ids=["queue", "429-storm", "503-storm", "captcha"],
)
def test_challenges_are_waited_out_and_the_run_completes(
    hostile_env: Any, hostility: Hostility, event: str, expected: Any
) -> None:
    env, db = hostile_env
    with FixtureServer(market="demo", day=1, hostility=hostility) as server:
        result = _crawl(env, "--mirror", server.url, *FAST)
        challenged = sum(v for k, v in server.stats.items() if k != "content")
    run = _latest_run(db)
    assert run["status"] == "complete", (run["reasons"], result.stderr[-2000:])
    assert challenged > 0, "the server was not hostile"
    assert any(event in e for e in _events(db, run, "challenge")), _events(db, run, "challenge")
    assert len(_only_true_listings(db, 1)) == 340
    assert db.pages.count_documents({"run": run["_id"], "state": "listing"}) == 340


def test_slow_and_hanging_responses_are_retried_and_the_run_completes(hostile_env: Any) -> None:
    env, db = hostile_env
    hostility = Hostility(
        session_cookie=SESSION, slow_every=25, slow_seconds=1.0, hang_every=90, hang_seconds=4
    )
    with FixtureServer(market="demo", day=1, hostility=hostility) as server:
        _crawl(env, "--mirror", server.url, "-s", "DOWNLOAD_TIMEOUT=2")
        assert server.stats.get("slow", 0) > 0 and server.stats.get("timeout", 0) > 0
    run = _latest_run(db)
    assert run["status"] == "complete", run["reasons"]
    assert len(_only_true_listings(db, 1)) == 340


def test_a_pagination_trap_does_not_hold_the_crawl(hostile_env: Any) -> None:
    env, db = hostile_env
    with FixtureServer(
        market="demo", day=1, hostility=Hostility(session_cookie=SESSION, pagination_trap=True)
    ) as server:
        _crawl(env, "--mirror", server.url)
        assert server.stats.get("trap", 0) > 0
    run = _latest_run(db)
    assert run["status"] == "complete", run["reasons"]
    assert run["counts"]["pages"] < 401 + 40, "it followed the trap"


def test_a_mirror_that_dies_mid_crawl_hands_over_to_the_other(hostile_env: Any) -> None:
    env, db = hostile_env
    dying = Hostility(session_cookie=SESSION, die_after=120)
    with (
        FixtureServer(market="demo", day=1, hostility=dying) as first,
        FixtureServer(market="demo", day=1, hostility=Hostility(session_cookie=SESSION)) as second,
    ):
        _crawl(env, "--mirror", first.url, "--mirror", second.url)
        assert first.requests_served >= 120 and second.requests_served > 0
    run = _latest_run(db)
    assert run["status"] == "complete", run["reasons"]
    switched = _events(db, run, "mirror")
    assert switched == [
        f"mirror {first.url} unreachable (ConnectionRefusedError); switching to {second.url}"
    ] or any("switching to" in e for e in switched)
    assert len(_only_true_listings(db, 1)) == 340


def test_session_expiry_pauses_the_source_tells_the_team_and_delists_nothing(
    hostile_env: Any, tmp_path: Path
) -> None:
    env, db = hostile_env
    told = tmp_path / "notified.txt"
    env["DARKARCHIVE_NOTIFY_COMMAND"] = (
        f"sh -c 'echo $DARKARCHIVE_EVENT $DARKARCHIVE_SOURCE $DARKARCHIVE_RUN > {told}'"
    )
    with FixtureServer(market="demo", day=1, hostility=Hostility(session_cookie=SESSION)) as srv:
        _crawl(env, "--mirror", srv.url)
        assert _latest_run(db)["status"] == "complete"
        srv.set_day(2)
        srv.set_hostility(Hostility(session_cookie=SESSION, session_expires_after=150))
        result = _crawl(env, "--mirror", srv.url)
    run = _latest_run(db)
    assert run["status"] == "partial", run["reasons"]
    assert "crawl stopped early: session_expired" in run["reasons"]
    assert "source demo paused" in result.stderr
    (paused,) = _events(db, run, "session")[:1]
    assert "session expired or was never valid" in paused
    assert delisted(db, "demo", run["_id"]) == [], "a partial run must not delist"
    assert db.pages.count_documents({"run": run["_id"], "state": "login_wall"}) >= 1
    login_urls = db.pages.distinct("url", {"run": run["_id"], "state": "login_wall"})
    made_now = {"provenance.run_id": run["_id"], "provenance.url": {"$in": login_urls}}
    assert not db.listing_versions.find_one(made_now)
    _only_true_listings(db, 1, 2)
    assert told.read_text().split() == ["session_expired", "demo", run["_id"]]


def test_no_session_at_all_fetches_one_login_page_and_fails(hostile_env: Any) -> None:
    env, db = hostile_env
    env["DEMO_SESSION"] = "not-the-session"
    with FixtureServer(market="demo", day=1, hostility=Hostility(session_cookie=SESSION)) as srv:
        _crawl(env, "--mirror", srv.url)
        assert srv.stats.get("content", 0) == 0
    run = _latest_run(db)
    assert run["status"] == "failed"
    assert db.pages.distinct("state", {"run": run["_id"]}) == ["login_wall"]
    assert db.listing_versions.count_documents({}) == 0


def test_maintenance_is_recorded_as_such_and_archives_nothing(hostile_env: Any) -> None:
    env, db = hostile_env
    hostility = Hostility(session_cookie=SESSION, maintenance=True)
    with FixtureServer(market="demo", day=1, hostility=hostility) as srv:
        _crawl(env, "--mirror", srv.url, *FAST, "-s", "CHALLENGE_BACKOFF_RETRIES=2")
        assert srv.stats.get("maintenance", 0) == 3, "one request, two retries"
    run = _latest_run(db)
    assert run["status"] == "failed"
    assert db.pages.distinct("state", {"run": run["_id"]}) == ["maintenance"]
    assert db.listing_versions.count_documents({}) == 0
