"""Progress of a crawl: the tally, plain log lines off a terminal, a live bar on one."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crawler.extensions.progress import CrawlTally
from crawler.items import PageItem
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from pathlib import Path

    from pipelines.store.embedded import EmbeddedMongo


def _page(url: str, state: str, kind: str = "index", **links: list[str]) -> PageItem:
    return PageItem("mkt", url, kind, state, datetime.now(UTC), links=links)


def test_expected_pages_grow_with_links_and_the_markets_own_totals() -> None:
    tally = CrawlTally()
    assert tally.eta() is None
    tally.add(_page("/", "index", listing=["/l/1", "/l/2"], pagination=["/?p=2"]))
    assert (tally.fetched, tally.expected) == (1, 4)
    market = _page("/?p=2", "index", listing=["/l/2", "/l/3"], vendor=["/v/1"])
    market.expected = {"listing_total": 10}
    tally.add(market)
    # 2 index pages, 10 listings by the market's own count, 1 vendor linked.
    assert (tally.fetched, tally.expected) == (2, 13)
    tally.add(_page("/l/1", "listing", kind="listing"))
    tally.add(_page("/l/2", "captcha", kind="listing"))
    assert tally.states() == "captcha 1, index 2, listing 1"
    assert tally.eta() is not None
    assert tally.line("mkt").startswith("mkt: 4 of ~13 pages (captcha 1, index 2, listing 1), ")


def _env(mongo_server: EmbeddedMongo, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"progress_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path),
    }


def test_off_a_terminal_progress_is_plain_log_lines(
    mongo_server: EmbeddedMongo, tmp_path: Path
) -> None:
    with FixtureServer(market="shop", day=1) as market:
        result = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "crawl", "shop", "--mirror", market.url,
             "-s", "PROGRESS_INTERVAL=0.2"],
            capture_output=True, text=True, timeout=300, env=_env(mongo_server, tmp_path),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if "[crawler.extensions.progress]" in line]
    assert len(lines) >= 3, result.stderr[-3000:]
    assert " pages (" in lines[0] and "pages/min" in lines[0]
    assert lines[-1].endswith("(done: finished)")
    assert ": shop: 117 of ~117 pages (index 7, listing 100, vendor 10)" in lines[-1]


def test_on_a_terminal_progress_is_a_live_bar(mongo_server: EmbeddedMongo, tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    with FixtureServer(market="shop", day=1) as market:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "shop",
             "--mirror", market.url],
            stdout=subprocess.DEVNULL, stderr=follower, env=_env(mongo_server, tmp_path),
        )  # fmt: skip
        os.close(follower)
        screen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end closed: the crawl has ended
                break
            if not chunk:
                break
            screen += chunk
        assert proc.wait(timeout=300) == 0
    os.close(leader)
    text = screen.decode("utf-8", "replace")
    assert "117/117" in text, text[-2000:]
    assert "index 7, listing 100, vendor 10" in text
