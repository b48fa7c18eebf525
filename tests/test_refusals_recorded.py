"""Every request the crawl refuses is on the run with its reason, not only in a DEBUG line.

The fixture server's fixed hostile pages (`fixtures.hostile.hostile_endpoint`) are added to
the demo source's start pages: a redirect loop, redirects to the cloud metadata address, to
`file:` and to `data:`, an index page whose links lead to `file:`, `data:`, 169.254.169.254
and another host, and a page that never ends. Before the fix the off-site ones and the loop
left no page record and no run event, and the cut-off page was recorded with the reason
"CancelledError: ". The rest of the market is still crawled in full.
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
from fixtures.hostile import METADATA_URL
from fixtures.market import truth
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database

    from pipelines.store.embedded import EmbeddedMongo

HOSTILE_STARTS = [
    "/",
    "/hostile/redirect-loop",
    "/hostile/redirect-metadata",
    "/hostile/redirect-file",
    "/hostile/redirect-data",
    "/category/hostile-links",
    "/hostile/endless",
]

# (what the market did, the start of the recorded reason; {m} is the mirror's URL)
REFUSALS = [
    ("redirect loop", "refused a redirect loop: {m}/hostile/redirect-loop -> "
     "{m}/hostile/redirect-loop-b -> {m}/hostile/redirect-loop"),
    ("redirect to the metadata address", f"refused {METADATA_URL}: host '169.254.169.254' is "
     "not one of the source's (redirected: {m}/hostile/redirect-metadata -> "),
    ("redirect to file:", "refused redirect from {m}/hostile/redirect-file to "
     "file:///etc/passwd: not http(s)"),
    ("redirect to data:", "refused redirect from {m}/hostile/redirect-data to data:text/html"),
    ("file: link", "refused file:///etc/passwd: a file: URL is never fetched"),
    ("data: link", "refused data:text/html,"),  # the URL as Scrapy escaped it
    ("metadata link", f"refused {METADATA_URL}: host '169.254.169.254' is not one of the "
     "source's"),
    ("off-site link", "refused http://elsewhere.invalid/: host 'elsewhere.invalid' is not one"),
]  # fmt: skip


@pytest.fixture(scope="module")
def hostile_crawl(
    mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database[Any], dict[str, Any], str, subprocess.CompletedProcess[str]]]:
    """One crawl of the demo market with every hostile start page; shared by the checks."""
    tmp = tmp_path_factory.mktemp("refusals")
    sources = tmp / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, sources)
    demo = sources / "demo.yaml"
    text = demo.read_text(encoding="utf-8")
    assert 'start_pages: ["/"]' in text
    demo.write_text(text.replace('start_pages: ["/"]', f"start_pages: {HOSTILE_STARTS}"), "utf-8")
    name = f"refusals_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp / "home"),
        "DARKARCHIVE_SOURCES_DIR": str(sources),
    }
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    with FixtureServer(market="demo", day=1) as server:
        result = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
             "--mirror", server.url, "-s", "DOWNLOAD_MAXSIZE=2000000"],
            capture_output=True, text=True, timeout=600, env=env,
        )  # fmt: skip
        url = server.url
    db = client[name]
    run = db.runs.find_one(sort=[("seq", -1)])
    assert run is not None, result.stdout + result.stderr[-3000:]
    yield db, run, url, result
    client.drop_database(name)
    client.close()


@pytest.mark.parametrize(("what", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_is_a_run_event_with_its_reason(
    hostile_crawl: Any, what: str, reason: str
) -> None:
    db, run, url, _ = hostile_crawl
    expected = reason.format(m=url)
    refused = [e["reason"] for e in db.run_events.find({"run": run["_id"], "kind": "refused"})]
    found = [r for r in refused if r.startswith(expected)]
    assert found, (what, expected, refused)
    if what == "data: link":
        assert found[0].endswith(": a data: URL is never fetched"), found


def test_a_cut_off_download_says_why(hostile_crawl: Any) -> None:
    db, run, url, _ = hostile_crawl
    page = db.pages.find_one({"run": run["_id"], "url": f"{url}/hostile/endless"})
    assert page is not None
    assert page["error"].startswith(f"download of {url}/hostile/endless cut off: ")
    assert "DOWNLOAD_MAXSIZE (2000000 bytes)" in page["error"]


def test_the_rest_of_the_market_is_crawled_in_full(hostile_crawl: Any) -> None:
    db, run, _, result = hostile_crawl
    listings = {d["key"] for d in db.listing_versions.find({}, {"key": 1})}
    assert listings == {t["listing_id"] for t in truth("demo", 1)["listings"]}, result.stderr
    assert not any("169.254" in p["url"] for p in db.pages.find({"run": run["_id"]}))
