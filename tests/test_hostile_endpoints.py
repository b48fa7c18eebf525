"""A crawl of the demo market with every hostile page mixed in ends partial, and says why.

The fixture server runs with `Hostility(hostile_pages=True)` (fixtures/hostile.py): its home
page links, among the market's own pages, an 80,000-row tier table, a 100,000-deep
description, a page of invalid UTF-8, four absurd prices ("1e999 BTC", "$1e999", "-5 BTC", a
50-digit price), a gzip bomb, an endless stream, a redirect loop, redirects to 169.254.x,
`file:` and `data:`, an index page of off-site links, and a page of catastrophic-
backtracking bait (met by a detector that backtracks, added to the source copy). These are
the findings of issue 10 as regression endpoints. One crawl is shared by the checks: the
run is partial, every hostile page is on the run with its reason, every listing of the
market is archived, and a hostile listing whose only fault is one field is kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
import yaml

from crawler.sources.loader import DEFAULT_SOURCES_DIR
from fixtures.hostile import (
    ABSURD_PRICES,
    GZIP_BOMB_PATH,
    HOSTILE_LINKED,
    HOSTILE_PAGES,
    METADATA_URL,
    OVERSIZED_TIERS,
    UNDECODABLE,
    Hostility,
    hostile_page,
)
from fixtures.market import build_world, truth
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database

    from pipelines.store.embedded import EmbeddedMongo

CATASTROPHIC = "^(a|a)+$"
DETECTOR = 4  # its place among the demo source's state detectors


@dataclass
class Crawl:
    db: Database[Any]
    run: dict[str, Any]
    url: str  # the mirror's
    result: subprocess.CompletedProcess[str]
    hostile_requests: int

    def reasons(self, path: str) -> list[str]:
        """Everything the run recorded about one URL: its page's error, its events."""
        url = self.url + path
        page = self.db.pages.find_one({"run": self.run["_id"], "url": url}) or {}
        events = self.db.run_events.find({"run": self.run["_id"]})
        found = [e["reason"] for e in events if e.get("url") == url or url in e["reason"]]
        return [page["error"], *found] if page.get("error") else found

    def listing(self, key: str) -> dict[str, Any] | None:
        version = self.db.listing_versions.find_one({"key": key})
        return None if version is None else version["content"]


@pytest.fixture(scope="module")
def crawl(mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawl]:
    """One crawl of the demo market with every hostile page linked from its home page."""
    tmp = tmp_path_factory.mktemp("hostile_endpoints")
    sources = tmp / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, sources)
    demo = sources / "demo.yaml"
    data = yaml.safe_load(demo.read_text(encoding="utf-8"))
    data["states"].append({"state": "captcha", "text_regex": CATASTROPHIC})
    assert len(data["states"]) == DETECTOR + 1
    demo.write_text(yaml.safe_dump(data), encoding="utf-8")
    name = f"hostile_pages_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp / "home"),
        "DARKARCHIVE_SOURCES_DIR": str(sources),
    }
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    with FixtureServer(market="demo", day=1, hostility=Hostility(hostile_pages=True)) as server:
        result = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
             "--mirror", server.url],
            capture_output=True, text=True, timeout=600, env=env,
        )  # fmt: skip
        url, hostile = server.url, server.stats["hostile"]
    db = client[name]
    run = db.runs.find_one(sort=[("seq", -1)])
    assert run is not None, result.stdout + result.stderr[-3000:]
    yield Crawl(db, run, url, result, hostile)
    client.drop_database(name)
    client.close()


def test_the_run_is_partial_with_its_reasons(crawl: Crawl) -> None:
    assert crawl.run["status"] == "partial", (crawl.run["reasons"], crawl.result.stderr[-2000:])
    assert crawl.result.returncode == 4
    assert crawl.run["reasons"]
    # every hostile URL the home page links was asked for (redirects once more each)
    assert crawl.hostile_requests >= len(HOSTILE_LINKED)


def test_no_listing_of_the_market_is_lost(crawl: Crawl) -> None:
    keys = {d["key"] for d in crawl.db.listing_versions.find({}, {"key": 1})}
    market = {t["listing_id"] for t in truth("demo", 1)["listings"]}
    assert market <= keys, sorted(market - keys)
    assert keys - market <= set(HOSTILE_PAGES)  # nothing else became a listing
    assert not any("169.254" in p["url"] for p in crawl.db.pages.find({"run": crawl.run["_id"]}))


# (hostile path, the start of one recorded reason; {m} is the mirror's URL)
REASONS = [
    ("/listing/hostile-oversized",
     f"listing hostile-oversized: tiers has {OVERSIZED_TIERS} items; kept the first 500"),
    ("/hostile/redirect-loop", "refused a redirect loop: {m}/hostile/redirect-loop -> "
     "{m}/hostile/redirect-loop-b -> {m}/hostile/redirect-loop"),
    ("/hostile/redirect-metadata", f"refused {METADATA_URL}: host '169.254.169.254' is not one "
     "of the source's (redirected: {m}/hostile/redirect-metadata -> "),
    ("/hostile/redirect-file", "refused redirect from {m}/hostile/redirect-file to "
     "file:///etc/passwd: not http(s)"),
    ("/hostile/redirect-data", "refused redirect from {m}/hostile/redirect-data to data:"),
    ("/hostile/endless", "download of {m}/hostile/endless cut off: the body grew past "
     "DOWNLOAD_MAXSIZE"),
    (GZIP_BOMB_PATH, "Ignored response <200 {m}/hostile/gzip-bomb> because its body"),
    ("/hostile/backtrack", f"PatternTimeout: states[{DETECTOR}].text_regex: regular expression "
     f"'{CATASTROPHIC}' took more than 2 s on"),
    *((f"/listing/{key}", "field price: ") for key in ABSURD_PRICES),
]  # fmt: skip


@pytest.mark.parametrize(("path", "reason"), REASONS, ids=[r[0] for r in REASONS])
def test_each_hostile_page_is_recorded_with_its_reason(
    crawl: Crawl, path: str, reason: str
) -> None:
    expected = reason.format(m=crawl.url)
    recorded = crawl.reasons(path)
    assert any(r.startswith(expected) for r in recorded), (expected, recorded)


def test_off_site_links_of_a_hostile_index_page_are_refused(crawl: Crawl) -> None:
    refused = [
        e["reason"] for e in crawl.db.run_events.find({"run": crawl.run["_id"], "kind": "refused"})
    ]
    for start in (
        "refused file:///etc/passwd: a file: URL is never fetched",
        f"refused {METADATA_URL}: host '169.254.169.254' is not one of the source's",
        "refused http://elsewhere.invalid/: host 'elsewhere.invalid' is not one",
    ):
        assert any(r.startswith(start) for r in refused), (start, refused)


def test_an_oversized_listing_is_kept_with_its_tiers_capped(crawl: Crawl) -> None:
    content = crawl.listing("hostile-oversized")
    assert content is not None
    assert len(content["tiers"]) == 500
    assert content["tiers"][0]["quantity"]["text"] == "1 g"


@pytest.mark.parametrize(("key", "raw"), ABSURD_PRICES.items(), ids=list(ABSURD_PRICES))
def test_an_absurd_price_is_a_problem_on_the_field_and_the_listing_is_kept(
    crawl: Crawl, key: str, raw: str
) -> None:
    content = crawl.listing(key)
    assert content is not None, f"listing {key} was lost"
    assert content["title"] == f"Hostile listing {key}"
    assert content["price"]["text"] == raw  # the raw text, exactly as shown
    assert content["price"].get("amount") is None  # never read as a plausible number
    problems = [r for r in crawl.reasons(f"/listing/{key}") if r.startswith("field price: ")]
    assert problems and raw in problems[0], problems


def test_a_deep_description_costs_the_description_not_the_listing(crawl: Crawl) -> None:
    content = crawl.listing("hostile-deep-description")
    assert content is not None, crawl.reasons("/listing/hostile-deep-description")
    assert content["title"] == "Hostile listing hostile-deep-description"
    assert content["price"]["text"] == "0.0100 BTC"
    recorded = crawl.reasons("/listing/hostile-deep-description")
    assert any("description" in r for r in recorded), recorded
    assert not any("RecursionError" in r for r in recorded), recorded


def test_an_undecodable_page_is_a_problem_on_its_page(crawl: Crawl) -> None:
    page = crawl.db.pages.find_one(
        {"run": crawl.run["_id"], "url": f"{crawl.url}/listing/hostile-undecodable"}
    )
    assert page is not None and page["state"] == "listing"
    served = hostile_page(build_world("demo", 1), "/listing/hostile-undecodable")
    assert served is not None and served.body is not None
    assert page["sha256"] == hashlib.sha256(served.body).hexdigest()  # archived as it came
    offset = str(served.body.index(UNDECODABLE))  # where the first invalid byte sits
    recorded = crawl.reasons("/listing/hostile-undecodable")
    assert any("utf-8" in r.lower() and offset in r for r in recorded), recorded
    assert crawl.listing("hostile-undecodable") is not None  # the listing is kept
