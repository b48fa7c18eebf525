"""Per-request noise in the fixture markets: new bytes on every page, no new content.

A re-crawl of an unchanged market whose every page carries a fresh token, clock and visitor
count must archive every page again (raw bytes are evidence) and write no new version.
"""

from __future__ import annotations

import urllib.request
from typing import TYPE_CHECKING, Any

from subprocesses import run_cli

from fixtures.noise import NOISE_CLASS, with_noise
from fixtures.server import FixtureServer
from pipelines.store.bodies import load_bodies

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
    crawl_env: tuple[dict[str, str], Database[Any], Path],
) -> None:
    env, db, _ = crawl_env
    with FixtureServer(market="demo", noise=True) as market:
        run_cli("crawl", "demo", "--mirror", market.url, env=env)
        versions = {c: db[c].count_documents({}) for c in ("listing_versions", "vendor_versions")}
        run_cli("crawl", "demo", "--mirror", market.url, env=env)
    runs = list(db.runs.find({}, {"status": 1}).sort("seq", 1))
    assert [r["status"] for r in runs] == ["complete", "complete"]
    hashes = [
        {p["url"]: p["sha256"] for p in db.pages.find({"run": r["_id"]}, {"url": 1, "sha256": 1})}
        for r in runs
    ]
    assert hashes[0].keys() == hashes[1].keys()
    assert all(hashes[0][url] != hashes[1][url] for url in hashes[0])  # every body is new
    for url, old in hashes[0].items():  # both kept: the old whole, the new a delta of it
        new = hashes[1][url]
        docs = {d["_id"]: d for d in db.bodies.find({"_id": {"$in": [old, new]}})}
        # The demo source declares its noise block volatile: the page is unchanged, so the
        # old body stays whole (not re-encoded) and the new one is a delta against it.
        assert {(d["compression"], d.get("base")) for d in docs.values()} == {
            ("zstd", None),
            ("zstd-delta", old),
        }, url
    assert set(load_bodies(db, hashes[1].values())) == set(hashes[1].values())
    after = {c: db[c].count_documents({}) for c in versions}
    assert after == versions  # the noise is no change of content
