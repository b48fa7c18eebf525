"""A dead first mirror with no retries: the moved request must be fetched, not filtered.

The request fingerprint ignores which mirror a URL names, so a request moved to the next
mirror is its own duplicate. Before the fix, with `retries: 0` (from the command line or
the source file) the scheduler dropped it at DEBUG and the crawl fetched nothing: "no
listing or vendor page was parsed". Crawled through the CLI, as the team runs it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from pathlib import Path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _no_retries_in_source(sources: Path) -> list[str]:
    demo = sources / "demo.yaml"
    text = demo.read_text(encoding="utf-8")
    polite = "politeness: {concurrency: 8, delay: 0, timeout: 30, retries: 2}"
    assert polite in text
    demo.write_text(text.replace(polite, polite.replace("retries: 2", "retries: 0")), "utf-8")
    return []


def _no_retries_on_command_line(_sources: Path) -> list[str]:
    return ["-s", "RETRY_TIMES=0"]


@pytest.mark.parametrize(
    "no_retries",
    [_no_retries_on_command_line, _no_retries_in_source],
    ids=["-s RETRY_TIMES=0", "politeness.retries: 0"],
)
def test_a_dead_first_mirror_without_retries_moves_the_crawl_to_the_next(
    crawl_env: Any, no_retries: Any
) -> None:
    env, db, sources = crawl_env
    extra = no_retries(sources)
    dead = f"http://127.0.0.1:{_closed_port()}"
    with FixtureServer(market="demo", day=1) as server:
        result = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
             "--mirror", dead, "--mirror", server.url, *extra],
            capture_output=True, text=True, timeout=600, env=env,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    run = db.runs.find_one(sort=[("seq", -1)])
    assert run is not None and run["status"] == "complete", run
    assert db.pages.count_documents({"run": run["_id"], "state": "listing"}) > 0
    switches = [e["reason"] for e in db.run_events.find({"run": run["_id"], "kind": "mirror"})]
    assert len(switches) == 1 and switches[0].startswith(f"mirror {dead} unreachable")
    # The start page moved once and was fetched once, on the live mirror.
    start = db.pages.count_documents({"run": run["_id"], "url": server.url + "/"})
    assert start == 1


def test_every_mirror_dead_ends_without_a_loop(crawl_env: Any) -> None:
    """dont_filter on a moved request cannot bounce it between dead mirrors for ever."""
    env, db, _ = crawl_env
    dead = [f"http://127.0.0.1:{_closed_port()}" for _ in range(3)]
    args = [a for url in dead for a in ("--mirror", url)]
    result = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
         *args, "-s", "RETRY_TIMES=0"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    run = db.runs.find_one(sort=[("seq", -1)])
    assert run is not None and run["status"] == "failed"
    switches = [e["reason"] for e in db.run_events.find({"run": run["_id"], "kind": "mirror"})]
    assert len(switches) == 3  # two switches, then "every mirror is unreachable"
    assert switches[-1].startswith("every mirror is unreachable")
