"""A bad source file, a dead site, a page that fails extraction, a Tor source without Tor:
each gives a clear message and a record on the run, and the crawl goes on where it can."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pymongo

from crawler.sources.loader import DEFAULT_SOURCES_DIR
from fixtures.server import FixtureServer
from pipelines.store.embedded import EmbeddedMongo
from pipelines.store.queries import load_body
from pipelines.store.spool import Spool

if TYPE_CHECKING:
    from pathlib import Path


PROJECT_ROOT = DEFAULT_SOURCES_DIR.parents[1]  # where scrapy.cfg is


def _crawl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_site_fails_the_run_with_the_reason(crawl_env: Any) -> None:
    env, db, _ = crawl_env
    url = f"http://127.0.0.1:{_closed_port()}"
    result = _crawl(env, "--mirror", url)
    assert result.returncode == 1
    assert "run demo:000001: failed" in result.stdout
    run = db.runs.find_one({"_id": "demo:000001"})
    assert run["status"] == "failed"
    assert "no listing or vendor page was parsed" in run["reasons"][0]
    (event,) = db.run_events.find({"run": "demo:000001", "kind": "fetch"})
    assert event["url"] == url + "/" and event["state"] == "error"
    assert "ConnectionRefused" in event["reason"]
    (page,) = db.pages.find({"run": "demo:000001"})
    assert page["state"] == "error" and page["sha256"] is None
    assert db.listings.count_documents({}) == 0
    history = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "runs", "demo"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert "demo:000001" in history.stdout and "failed" in history.stdout
    assert "why: no listing or vendor page was parsed" in history.stdout


def test_template_drift_fails_the_run_loudly_and_archives_no_empty_record(
    crawl_env: Any,
) -> None:
    env, db, sources = crawl_env
    demo = sources / "demo.yaml"
    # The market "changed its template": vendor names moved, so the required field is gone.
    demo.write_text(
        demo.read_text(encoding="utf-8").replace("h1.vendor-name::text", "h1.seller::text"),
        encoding="utf-8",
    )
    with FixtureServer(market="demo", day=1) as server:
        base = server.url
        result = _crawl(env, "--mirror", base)
    assert result.returncode == 1, result.stderr[-3000:]
    run = db.runs.find_one({"_id": "demo:000001"})
    assert run["status"] == "failed"
    assert run["reasons"] == [
        "template drift on vendor pages: 30 of 30 failed extraction (over 20%); "
        "fields not found: vendor.name"
    ]
    assert "why: template drift on vendor pages" in result.stdout
    events = list(db.run_events.find({"run": "demo:000001", "kind": "extraction"}))
    assert len(events) == 30
    assert all(e["url"].startswith(base + "/vendor/") for e in events)
    assert all("required field(s) not found: name" in e["reason"] for e in events)
    assert db.vendors.count_documents({}) == 0, "no empty vendor record may be archived"
    assert db.listings.count_documents({}) == 340
    assert db.pages.count_documents({"run": "demo:000001", "state": "vendor"}) == 30


def test_tor_source_without_tor_fetches_nothing_and_says_why(
    crawl_env: Any, tmp_path: Path
) -> None:
    env, db, sources = crawl_env
    demo = sources / "demo.yaml"
    demo.write_text(
        demo.read_text(encoding="utf-8").replace("network: clearnet", "network: tor"),
        encoding="utf-8",
    )
    with socket.socket() as probe:  # a port where no tor listens
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    config = tmp_path / "tor.yaml"
    config.write_text(f"mode: external\nexternal: {{socks: 127.0.0.1:{dead}, control: null}}\n")
    env["DARKARCHIVE_TOR_CONFIG"] = str(config)
    with FixtureServer(market="demo", day=1) as server:
        result = _crawl(env, "--mirror", server.url)
        assert server.requests_served == 0
    assert result.returncode == 1
    run = db.runs.find_one({"_id": "demo:000001"})
    assert run["status"] == "failed"
    assert f"Tor's SOCKS port 127.0.0.1:{dead} is not reachable" in run["reasons"][0]
    assert db.pages.count_documents({}) == 0


def test_bad_source_file_is_reported_and_leaves_a_failed_run(crawl_env: Any) -> None:
    env, db, sources = crawl_env
    demo = sources / "demo.yaml"
    demo.write_text(
        demo.read_text(encoding="utf-8").replace("concurrency: 8", "concurrency: 0"),
        encoding="utf-8",
    )
    result = _crawl(env)
    assert result.returncode == 2
    message = f"{demo}: key politeness.concurrency: Input should be greater than or equal to 1"
    assert f"bad source definition: {message}" in result.stderr
    run = db.runs.find_one({"_id": "demo:000001"})
    assert run["status"] == "failed" and message in run["reasons"][0]
    assert db.run_events.find_one({"run": "demo:000001", "kind": "config"}) is not None
    assert db.pages.count_documents({}) == 0


def test_database_dying_mid_crawl_spools_and_the_next_crawl_writes_the_spool_first(
    tmp_path: Path,
) -> None:
    """A dead database must not turn into dropped pages: the crawl goes on into the local
    spool, says exactly what it kept there, and the next crawl of the source writes the
    spool and closes that run before it starts its own."""
    data = tmp_path / "db"
    home = tmp_path / "home"
    env = {**os.environ, "DARKARCHIVE_HOME": str(home)}
    with FixtureServer(market="demo", day=1) as market:
        database = EmbeddedMongo(data).start()
        port = int(database.uri.rsplit(":", 1)[1].strip("/"))
        env["MONGODB_URI"] = database.uri + "?serverSelectionTimeoutMS=2000"
        crawl = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "--log-level", "ERROR", "crawl", "demo",
             "--mirror", market.url, "-s", "ARCHIVE_BATCH_SIZE=50"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        # Past the first writes (a batch is 50 listings), well before the end (401 pages).
        while market.requests_served < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert database.pid is not None
        os.kill(database.pid, signal.SIGKILL)  # a crash, not a shutdown
        out, err = crawl.communicate(timeout=300)
        database.stop()
        assert crawl.returncode == 3, out + err  # the run could not be closed
        assert market.requests_served == 401, "the crawl goes on: nothing is left unfetched"
        folder = home / "spool" / "demo:000001"
        kept = [r for _, r in Spool(folder).read()]
        pages = [r for r in kept if r["type"] == "page"]
        listings = sum(1 for p in pages for kind, _, _ in p["records"] if kind == "listing")
        vendors = sum(1 for p in pages for kind, _, _ in p["records"] if kind == "vendor")
        feedback = sum(len(p["feedback"]) for p in pages)
        assert kept[-1]["type"] == "verdict" and kept[-1]["status"] == "complete"
        assert listings > 0 and feedback > 0
        assert (
            f"run demo:000001: the archive database was unreachable when the crawl ended; "
            f"{len(pages)} page(s) ({listings} listing(s), {vendors} vendor(s), {feedback} "
            f"feedback entries) are kept in the spool {folder}"
        ) in err
        assert "darkarchive spool flush --run demo:000001" in err

        with EmbeddedMongo(data, port=port) as restarted:
            client: pymongo.MongoClient = pymongo.MongoClient(restarted.uri, tz_aware=True)
            db = client.darkarchive
            assert db.runs.find_one({"_id": "demo:000001"})["status"] == "running"
            stored = {p["url"] for p in db.pages.find({"run": "demo:000001"}, {"url": 1})}
            # Nothing fetched is missing: what was not stored is in the spool.
            assert len(stored | {p["url"] for p in pages}) == 401
            assert len(stored) < 401
            env["MONGODB_URI"] = restarted.uri
            again = _crawl(env, "--mirror", market.url)
            assert again.returncode == 0, again.stderr[-3000:]
            assert f"spool of run demo:000001: {len(pages)} page(s)" in again.stdout
            assert "run complete" in again.stdout
            assert "run demo:000002: complete" in again.stdout
            run = db.runs.find_one({"_id": "demo:000001"})
            assert run["status"] == "complete", run.get("reasons")
            assert db.pages.count_documents({"run": "demo:000001"}) == 401
            assert db.listing_versions.count_documents({}) == 340
            assert db.listings.count_documents({}) == 340
            assert run["counts"]["listing"]["observed"] == 340
            assert not folder.exists()
            client.close()


def test_media_reached_by_a_link_rule_is_never_downloaded(crawl_env: Any) -> None:
    """A careless rule that follows product photos: the headers say image/png, the body is
    never downloaded or archived, the refusal is recorded, the listings are still archived."""
    env, db, sources = crawl_env
    demo = sources / "demo.yaml"
    demo.write_text(
        demo.read_text(encoding="utf-8").replace(
            'listing: ["a.listing-link::attr(href)"]',
            'listing: ["a.listing-link::attr(href)", "img.product-photo::attr(src)"]',
        ),
        encoding="utf-8",
    )
    with FixtureServer(market="demo", day=1) as server:
        result = _crawl(env, "--mirror", server.url)
    assert result.returncode == 4, result.stderr[-3000:]  # partial
    run = db.runs.find_one({"_id": "demo:000001"})
    assert run["status"] == "partial"
    assert "340 page(s) in state other" in run["reasons"]
    refused = list(db.run_events.find({"run": "demo:000001", "kind": "refused"}))
    assert len(refused) == 340
    assert all("content type image/png is not enabled" in e["reason"] for e in refused)
    photos = list(db.pages.find({"run": "demo:000001", "url": {"$regex": "/photo/"}}))
    assert len(photos) == 340 and all(p["sha256"] is None for p in photos)
    for body in db.bodies.find({}, {"_id": 1}):
        assert load_body(db, body["_id"]).startswith(b"<!DOCTYPE html>")
    assert db.listings.count_documents({}) == 340


def test_scrapy_crawl_command_archives_like_the_cli(crawl_env: Any) -> None:
    """`scrapy crawl market -a source=<id>` is the same crawl through Scrapy's own CLI, into
    the same archive (DARKARCHIVE_DB and MONGODB_URI from the environment)."""
    env, db, _ = crawl_env
    with FixtureServer(market="demo", day=1) as server:
        result = subprocess.run(
            [sys.executable, "-m", "scrapy", "crawl", "market", "-a", "source=demo",
             "-a", f"mirror={server.url}", "-s", "LOG_LEVEL=WARNING"],
            capture_output=True, text=True, timeout=600, env=env, cwd=PROJECT_ROOT,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run = db.runs.find_one({"_id": "demo:000001"})
    assert run["status"] == "complete", run.get("reasons")
    assert db.listings.count_documents({}) == 340
    assert db.vendors.count_documents({}) == 30


def test_an_onion_mirror_on_a_clearnet_source_is_refused_before_any_request(
    crawl_env: Any,
) -> None:
    env, db, _ = crawl_env
    result = _crawl(
        env, "--mirror", "http://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstu.onion"
    )
    assert result.returncode == 1
    run = db.runs.find_one({"_id": "demo:000001"})
    assert run["status"] == "failed"
    assert "is an onion service; demo is not a Tor source" in run["reasons"][0]
    assert db.pages.count_documents({}) == 0
