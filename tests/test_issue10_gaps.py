"""Issue 10's findings that had no test of their own, or only part of one.

- Item 2, Tor half: a Tor source's first onion answers a give-up SOCKS code (0x02, 0x07,
  0x08, 0xF1, 0xF4, 0xF5, 0xF6). The error comes from the real Tor download handler through a
  loopback SOCKS5 server; the mirror middleware must move the request to the next onion
  and mark it `dont_filter`, or the mirror-blind duplicate filter drops it at DEBUG.
- Item 5: the README says plainly that a page object is code.
- Item 11: a malformed `MONGODB_URI` is one line from the CLI (the store's own test checks
  the message, not what a command prints).
- The SIGKILL refetch gap: pages are written in small bulks (`page_batch`, `page_max_age`)
  rather than one bulk a second, so a crawl killed outright leaves at most a bulk unwritten.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from scrapy import Request
from scrapy.crawler import Crawler
from tor_helpers import FakeSocks5, scrapy_error, valid_onion

from crawler import exit_codes
from crawler.middlewares.mirrors import MirrorBlindFingerprinter, MirrorFailover
from crawler.spiders.market import MarketSpider
from crawler.tor.socks_errors import SOCKS_REPLIES, classify
from pipelines.store.page_writes import PageWrites

if TYPE_CHECKING:
    from pathlib import Path

    from pipelines.store.archive import Archive


def settings_module() -> dict[str, Any]:
    """The project's settings, as a crawl starts with them."""
    from crawler import settings

    return {k: getattr(settings, k) for k in dir(settings) if k.isupper()}


GIVE_UP = sorted(code for code, (_, action, _) in SOCKS_REPLIES.items() if action == "give_up")


def test_the_give_up_codes_are_the_ones_the_issue_names() -> None:
    assert GIVE_UP == [0x02, 0x07, 0x08, 0xF1, 0xF4, 0xF5, 0xF6]


@pytest.mark.parametrize("code", GIVE_UP, ids=[f"0x{c:02X}" for c in GIVE_UP])
def test_a_give_up_socks_code_moves_the_request_to_the_next_onion_unfiltered(code: int) -> None:
    first, second = f"http://{valid_onion()}", f"http://{valid_onion()}"
    assert first != second
    crawler = Crawler(MarketSpider, {**settings_module(), "RETRY_TIMES": 0})
    crawler.spider = MarketSpider.from_crawler(
        crawler, source="demo-onion", mirror=f"{first},{second}"
    )
    request = Request(f"{first}/category/cannabis", meta={"kind": "index", "tor": True})
    with FakeSocks5(reply=code) as socks:
        error = scrapy_error(f"socks5h://src:pw@{socks.address}", url=request.url)
    failure = classify(error)
    assert failure is not None and failure.action == "give_up", (error, failure)

    moved = MirrorFailover(crawler).process_exception(request, error)
    assert moved is not None, f"a give-up code ({error}) must move the request"
    assert moved.url == f"{second}/category/cannabis"
    assert crawler.spider.mirror == second  # type: ignore[attr-defined]
    # The fingerprint ignores the mirror: only dont_filter lets the scheduler keep it.
    fingerprint = MirrorBlindFingerprinter(crawler).fingerprint
    assert fingerprint(moved) == fingerprint(request)
    assert moved.dont_filter


T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _page(n: int) -> dict[str, Any]:
    return {
        "type": "page",
        "url": f"http://m/listing/{n}",
        "status": 200,
        "fetched_at": T0,
        "state": "listing",
        "kind": "listing",
        "body": f"<html>{n}</html>".encode(),
        "records": [],
        "feedback": [],
        "problems": [],
    }


# (page_max_age, page_batch, pages written, pages in the database before any checkpoint)
PAGE_BULKS = [
    (None, None, 25, 0),  # before: one bulk a second or 200 pages, whichever came first
    (None, 10, 25, 20),
    (None, 10, 9, 0),
    (0.0, None, 25, 25),
    (60.0, 10, 25, 20),
]


@pytest.mark.parametrize(("max_age", "batch", "written", "stored"), PAGE_BULKS)
def test_pages_are_written_in_small_bulks(
    archive: Archive, max_age: float | None, batch: int | None, written: int, stored: int
) -> None:
    run = archive.open_run("mkt", parser_version="p1", started_at=T0)
    writes = PageWrites(archive, run, parser_version="p1", page_max_age=max_age, page_batch=batch)
    for n in range(written):
        writes.write(_page(n))
    assert archive.db.pages.count_documents({"run": run.run_id}) == stored
    writes.checkpoint()
    assert archive.db.pages.count_documents({"run": run.run_id}) == written


def test_the_readme_says_plainly_that_a_page_object_is_code() -> None:
    """Item 5: a YAML file is data, a page object is code, and the README must say so."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert "**A page object is code:" in readme


# (MONGODB_URI, what the one line says); the password never shows
MALFORMED_URIS = [
    ("mongodb://u:s3cret@h:notaport/", "Port contains non-digit characters"),
    (
        "http://u:s3cret@h/",
        "Invalid URI scheme: URI must begin with 'mongodb://' or 'mongodb+srv://'",
    ),
]
COMMANDS = [
    ("runs", "demo"),
    ("export", "demo"),
    ("crawl", "demo", "--mirror", "http://127.0.0.1:9"),
]


@pytest.mark.parametrize(("uri", "said"), MALFORMED_URIS, ids=["port", "scheme"])
@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_malformed_mongodb_uri_is_one_line_from_the_cli(
    tmp_path: Path, uri: str, said: str, command: tuple[str, ...]
) -> None:
    """Item 11: the command says one line and exits, no traceback, nothing crawled."""
    env = {**os.environ, "MONGODB_URI": uri, "DARKARCHIVE_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", *command],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == exit_codes.DATABASE_UNREACHABLE, result.stderr
    said_all = (result.stdout + result.stderr).strip()
    assert "Traceback" not in said_all and "s3cret" not in said_all
    assert said_all.splitlines() == [
        f"darkarchive: MONGODB_URI is not a usable MongoDB URI: {said}; nothing was crawled "
        "or changed"
    ]
