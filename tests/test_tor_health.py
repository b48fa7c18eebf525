"""Tor failing real crawls: new identity, then source marked down; a dead tor stops the crawl."""

from __future__ import annotations

import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest
from tor_helpers import (
    PROJECT_ROOT,
    control_address,
    crawl_env,
    dead_authority_options,
    lone_tor,
    scrapy_crawl,
    scrapy_crawl_command,
    tor_source_yaml,
    valid_onion,
)

from crawler.tor.managed import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymongo.database import Database

    from crawler.tor.managed import ManagedTorProcess
    from pipelines.store.embedded import EmbeddedMongo

START_PAGES = ["/", "/vendors", "/category/a"]
ONE_AT_A_TIME = {"concurrency": 1, "delay": 0}
FAST_RETRIES = ["TOR_BACKOFF_BASE=0.1", "RETRY_TIMES=1"]
TTL_EXPIRED = "TTL expired (SOCKS 0x06)"
STOPPED = "Tor stopped answering (Tor's SOCKS port refused the connection)"


@pytest.fixture
def unusable_tor(tmp_path: Path) -> Iterator[ManagedTorProcess]:
    """Tor up, onions unreachable: every request fails with 0x06 after SocksTimeout 2 s."""
    with lone_tor(tmp_path / "tor", dead_authority_options()) as tor:
        yield tor


@pytest.fixture
def env_db(
    mongo_server: EmbeddedMongo, tmp_path: Path
) -> Iterator[tuple[dict[str, str], Database[Any]]]:
    with crawl_env(mongo_server.uri, tmp_path) as pair:
        yield pair


def _tor_settings(tor: ManagedTorProcess) -> list[str]:
    return [
        f"TOR_SOCKS=127.0.0.1:{tor.socks_port}",
        f"TOR_CONTROL={control_address(tor)}",
        f"TOR_CONTROL_COOKIE_FILE={tor.data_dir / 'control_auth_cookie'}",
    ]


def _tor_events(db: Database[Any]) -> list[dict[str, Any]]:
    return list(db.run_events.find({"run": "demo:000001", "kind": "tor"}).sort("at", 1))


def _nothing_fetched(db: Database[Any], onion: str, close_reason: str) -> None:
    """Nothing was fetched or stored; the run says why the crawl stopped.

    Requests that failed are on the run as failed pages; those still waiting in the
    scheduler when the crawl stops are dropped, as at any early stop.
    """
    pages = list(db.pages.find({"run": "demo:000001"}))
    urls = {p["url"] for p in pages}
    assert urls and len(urls) == len(pages)
    assert urls <= {f"http://{onion}{page}" for page in START_PAGES}
    assert {(p["state"], p["sha256"], p["status"]) for p in pages} == {("error", None, None)}
    assert db.bodies.count_documents({}) == 0
    run = db.runs.find_one({"_id": "demo:000001"})
    assert run is not None
    assert run["status"] == "failed"
    assert run["reasons"][0] == "no listing or vendor page was parsed (0 content pages)"
    assert f"crawl stopped early: {close_reason}" in run["reasons"]


def test_failing_circuits_get_a_new_identity_then_the_source_is_marked_down(
    unusable_tor: ManagedTorProcess,
    env_db: tuple[dict[str, str], Database[Any]],
    tmp_path: Path,
) -> None:
    env, db = env_db
    onion = valid_onion()
    tor_source_yaml(
        tmp_path / "sources",
        f"http://{onion}",
        tor={"new_identity_after": 2, "down_after": 4},
        start_pages=START_PAGES,
        politeness=ONE_AT_A_TIME,
    )
    started = time.monotonic()
    result = scrapy_crawl(env, f"http://{onion}", *_tor_settings(unusable_tor), *FAST_RETRIES)
    assert time.monotonic() - started < 40
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Spider closed (source_down)" in result.stderr
    assert "'finish_reason': 'source_down'" in result.stderr

    events = _tor_events(db)
    failures = [e for e in events if e["reason"].startswith("attempt ")]
    assert len(failures) == 4, [e["reason"] for e in events]
    assert all(f": {TTL_EXPIRED}: " in e["reason"] for e in failures)
    assert all(e["detail"]["code"] == 0x06 and e["detail"]["action"] == "retry" for e in failures)
    assert all(e["url"].startswith(f"http://{onion}/") for e in failures)
    newnym = f"new identity #1 (NEWNYM) after 2 circuit failures, the last {TTL_EXPIRED}"
    down = (
        "source demo marked down: 4 requests failed in a row through Tor, "
        f"the last with {TTL_EXPIRED}"
    )
    (identity,) = [e for e in events if e["reason"] == newnym]
    (marked_down,) = [e for e in events if e["reason"] == down]
    assert identity["detail"] == {"waited_s": 0.0}
    assert identity["at"] <= marked_down["at"]
    assert len(events) == 6, "failures after the source is marked down are not counted"
    assert max(e["at"] for e in events) == marked_down["at"]
    _nothing_fetched(db, onion, "source_down")


def test_a_tor_that_dies_mid_crawl_stops_the_crawl(
    unusable_tor: ManagedTorProcess,
    env_db: tuple[dict[str, str], Database[Any]],
    tmp_path: Path,
) -> None:
    env, db = env_db
    onion = valid_onion()
    tor_source_yaml(
        tmp_path / "sources", f"http://{onion}", start_pages=START_PAGES, politeness=ONE_AT_A_TIME
    )
    command = scrapy_crawl_command(f"http://{onion}", *_tor_settings(unusable_tor), *FAST_RETRIES)
    crawl = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while not _tor_events(db) and time.monotonic() < deadline and crawl.poll() is None:
            time.sleep(0.05)
        assert _tor_events(db), "the crawl never got a first answer from tor"
        unusable_tor.stop()  # tor dies while the crawl goes on
        _, err = crawl.communicate(timeout=30)
    finally:
        if crawl.poll() is None:
            crawl.kill()
            crawl.communicate()
    assert crawl.returncode == 0, err[-3000:]
    assert "Spider closed (tor_unavailable)" in err

    events = _tor_events(db)
    assert f": {TTL_EXPIRED}: " in events[0]["reason"], "tor answered before it died"
    (stopped,) = [e for e in events if e["reason"] == STOPPED]
    assert max(e["at"] for e in events) == stopped["at"], "nothing counted after it"
    refused = [e for e in events if ": Tor's SOCKS port refused the connection: " in e["reason"]]
    assert len(refused) == 1, [e["reason"] for e in events]
    assert refused[0]["detail"]["action"] == "tor_down"
    _nothing_fetched(db, onion, "tor_unavailable")


def test_a_socks_port_that_refuses_stops_the_crawl_at_the_first_request(
    env_db: tuple[dict[str, str], Database[Any]], tmp_path: Path
) -> None:
    env, db = env_db
    onion = valid_onion()
    tor_source_yaml(
        tmp_path / "sources", f"http://{onion}", start_pages=START_PAGES, politeness=ONE_AT_A_TIME
    )
    result = scrapy_crawl(
        env, f"http://{onion}", f"TOR_SOCKS=127.0.0.1:{free_port()}", *FAST_RETRIES
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Spider closed (tor_unavailable)" in result.stderr
    events = _tor_events(db)
    assert sorted(e["reason"].partition(": All")[0] for e in events) == [
        "Tor stopped answering (Tor's SOCKS port refused the connection)",
        "attempt 1: Tor's SOCKS port refused the connection",
    ]
    (first,) = [e for e in events if e["reason"].startswith("attempt 1: ")]
    assert first["detail"] == {"code": None, "action": "tor_down", "attempt": 1}
    assert first["url"] == f"http://{onion}/"
    assert "'retry/count'" not in result.stderr, "nothing is retried once Tor is gone"
    _nothing_fetched(db, onion, "tor_unavailable")
