"""Per-request noise in the fixture markets: new bytes on every page, no new content.

A re-crawl of an unchanged market whose every page carries a fresh token, clock and visitor
count must archive every page again (raw bytes are evidence) and write no new version.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from typing import TYPE_CHECKING, Any

from subprocesses import run_cli
from warcio.archiveiterator import ArchiveIterator

from crawler.reparse import reparse_run
from crawler.sources.loader import load_source
from fixtures.noise import NOISE_CLASS, with_noise
from fixtures.server import FixtureServer
from pipelines.exports.tables import page_rows
from pipelines.exports.warc import write_warc
from pipelines.query.asof import as_of
from pipelines.store.bodies import load_bodies
from pipelines.store.displayed import displayed_entries
from pipelines.store.page_packs import PACK_PAGES
from pipelines.store.run_pages import run_pages

if TYPE_CHECKING:
    from pathlib import Path

    from pymongo.database import Database


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def test_noise_is_fresh_on_every_request_and_only_in_its_block() -> None:
    with FixtureServer(market="demo", noise=True) as noisy, FixtureServer(market="demo") as calm:
        first, second = _get(noisy.url + "/"), _get(noisy.url + "/")
        plain = _get(calm.url + "/").decode()
    assert first != second
    for page in (first.decode(), second.decode()):
        start = page.index(f'<footer class="{NOISE_CLASS}">')
        end = page.index("</footer>", start) + len("</footer>")
        assert page[:start] + page[end:] == plain  # nothing else moved
    assert with_noise("<p>no body tag</p>").startswith("<p>no body tag</p><footer")


def test_an_unchanged_recrawl_with_noise_stores_the_bytes_and_no_new_version(
    crawl_env: tuple[dict[str, str], Database[Any], Path], tmp_path: Path
) -> None:
    env, db, _ = crawl_env
    with FixtureServer(market="demo", noise=True) as market:
        run_cli("crawl", "demo", "--mirror", market.url, env=env)
        versions = {c: db[c].count_documents({}) for c in ("listing_versions", "vendor_versions")}
        run_cli("crawl", "demo", "--mirror", market.url, env=env)
    runs = list(db.runs.find({}, {"status": 1}).sort("seq", 1))
    assert [r["status"] for r in runs] == ["complete", "complete"]
    run1, run2 = (r["_id"] for r in runs)
    pages = [{p["url"]: p for p in run_pages(db, run)} for run in (run1, run2)]
    hashes = [{url: p["sha256"] for url, p in run.items()} for run in pages]
    assert hashes[0].keys() == hashes[1].keys()
    assert all(hashes[0][url] != hashes[1][url] for url in hashes[0])  # every body is new
    # Every page of the re-crawl changed only in its noise: all packed, none in `pages`,
    # in packs of PACK_PAGES or more but the last.
    assert db.pages.count_documents({"run": run2}) == 0
    packs = list(db.page_packs.find({"run": run2}, {"pages": 1}))
    assert sum(p["pages"] for p in packs) == len(hashes[1])
    assert len(packs) <= len(hashes[1]) // PACK_PAGES + 1
    assert db.bodies.count_documents({"_id": {"$in": list(hashes[1].values())}}) == 0
    for url, old in hashes[0].items():  # both kept: the old whole, the new a delta of it
        # The demo source declares its noise block volatile: the page is unchanged, so the
        # old body stays whole (not re-encoded) and the new one is a delta against it.
        assert db.bodies.find_one({"_id": old}, {"compression": 1})["compression"] == "zstd"
        body = pages[1][url]["body"]
        assert (body["compression"], body["base"]) == ("zstd-delta", old), url
    # Found by its hash alone (the packs' `keys`), rebuilt and checked against it.
    assert set(load_bodies(db, hashes[1].values())) == set(hashes[1].values())
    after = {c: db[c].count_documents({}) for c in versions}
    assert after == versions  # the noise is no change of content
    # Every reader of a run's pages reads the packed run as it reads the first: as-of
    # (with the per-run values the vendor pages displayed, read from the packs) ...
    for kind in ("listing", "vendor"):
        first, second = (as_of(db, "demo", kind=kind, run=run) for run in (run1, run2))
        assert first["entities"], kind
        as_first = json.dumps(second["entities"], default=str).replace(run2, run1)
        assert as_first == json.dumps(first["entities"], default=str), kind
    shown = [len(list(displayed_entries(db, run, "vendor"))) for run in (run1, run2)]
    assert shown[1] == shown[0] > 0
    # ... reparse, the page table and the WARC.
    demo = load_source("demo")
    reports = [reparse_run(db, demo, run) for run in (run1, run2)]
    assert [(r.pages, r.same, r.differences) for r in reports] == [
        (len(hashes[0]), reports[0].same, [])
    ] * 2
    run_doc = db.runs.find_one({"_id": run2})
    assert [row["url"] for row in page_rows(db, run_doc)] == sorted(hashes[1])
    warc = tmp_path / "run2.warc.gz"
    assert write_warc(db, run_doc, warc, version="test") == len(hashes[1])
    with warc.open("rb") as handle:
        payloads = {
            r.rec_headers.get_header("WARC-Target-URI"): r.content_stream().read()
            for r in ArchiveIterator(handle)
            if r.rec_type == "response"
        }
    assert {url: hashlib.sha256(b).hexdigest() for url, b in payloads.items()} == hashes[1]
