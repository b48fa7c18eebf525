"""SIGTERM ends a crawl within seconds, whatever holds its page: the run is `interrupted`.

Before: a catastrophic detector pattern or a page object calling `sys.exit` wedged the crawl
on its page with SIGTERM ignored. Now a pattern stops at its time limit, a page object runs
on a thread of its own, and if the clean stop has not finished `SHUTDOWN_FORCE_AFTER`
seconds after the signal (a page object that never returns), a watchdog closes the run as
`interrupted` and the process exits with code 6.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from test_page_object_registry import HOSTILE_PAGES
from test_regex_limits import with_catastrophic_detector

from crawler import exit_codes
from crawler.extraction.registry import PACKAGES_ENV
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pymongo.database import Database


# Long enough for a clean stop (the pattern's time limit, the writer's last batch, the run's
# close) on a loaded 2-core machine running two test workers: 3 s was once too short there.
FORCE_AFTER = 6.0


@pytest.fixture
def crawl_env(
    crawl_env: tuple[dict[str, str], Database[Any], Path], tmp_path: Path
) -> tuple[dict[str, str], Database[Any], Path]:
    """The shared CLI environment, with page objects that hang or exit, allowed to run."""
    env, db, sources = crawl_env
    plugins = tmp_path / "plugins" / "hostile_pages"
    plugins.mkdir(parents=True)
    (plugins / "__init__.py").write_text(HOSTILE_PAGES, encoding="utf-8")
    env["PYTHONPATH"] = os.pathsep.join([str(plugins.parent), os.environ.get("PYTHONPATH", "")])
    env[PACKAGES_ENV] = "hostile_pages"
    env["HOSTILE_PAGE_MARKER"] = str(tmp_path / "page-object-called")
    return env, db, sources


def _vendor_page_object(name: str) -> Callable[[Path], None]:
    def edit(sources: Path) -> None:
        path = sources / "demo.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["pages"]["vendor"] = {
            "url_regex": "/vendor/[^/?#]+$",
            "page_object": f"hostile_pages.{name}",
            "page_object_timeout": 600,  # only the signal can end it
        }
        path.write_text(yaml.safe_dump(data), encoding="utf-8")

    return edit


def _catastrophic_detector(sources: Path) -> None:
    with_catastrophic_detector(sources)


def _page_object_called(env: dict[str, str], _server: FixtureServer) -> bool:
    return os.path.exists(env["HOSTILE_PAGE_MARKER"])


def _backtrack_page_served(_env: dict[str, str], server: FixtureServer) -> bool:
    return server.stats["hostile"] >= 1


@pytest.mark.parametrize(
    ("edit", "stuck", "forced"),
    [
        (_catastrophic_detector, _backtrack_page_served, False),
        (_vendor_page_object("exits"), _page_object_called, False),
        (_vendor_page_object("spins"), _page_object_called, True),
        (_vendor_page_object("sleeps"), _page_object_called, True),
    ],
    ids=[
        "catastrophic-detector",
        "page-object-sys-exit",
        "page-object-spins",
        "page-object-sleeps",
    ],
)
def test_sigterm_ends_the_crawl_within_seconds(
    crawl_env: Any, edit: Any, stuck: Any, forced: bool
) -> None:
    env, db, sources = crawl_env
    edit(sources)
    with FixtureServer(market="demo", day=1) as server:
        crawl = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
             "--mirror", server.url, "-s", f"SHUTDOWN_FORCE_AFTER={FORCE_AFTER}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not stuck(env, server) and crawl.poll() is None:
                assert time.monotonic() < deadline, "the crawl never reached the hostile page"
                time.sleep(0.05)
            assert crawl.poll() is None, crawl.communicate()
            signalled = time.monotonic()
            crawl.send_signal(signal.SIGTERM)
            out, err = crawl.communicate(timeout=FORCE_AFTER + 20)
            took = time.monotonic() - signalled
        finally:
            if crawl.poll() is None:
                crawl.kill()
                crawl.communicate()
    assert crawl.returncode == exit_codes.INTERRUPTED, out + err[-3000:]
    assert took < FORCE_AFTER + 10, took
    run = db.runs.find_one(sort=[("seq", -1)])
    assert run is not None and run["status"] == "interrupted", run
    assert f"resume with: darkarchive crawl demo --resume {run['_id']}" in err
    by_force = any("stopped by force" in r for r in run["reasons"])
    assert by_force == forced, run["reasons"]
