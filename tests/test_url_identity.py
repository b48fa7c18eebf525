"""One listing, many URLs: tracking parameters on every link do not make new pages.

The demo market is served through a proxy that adds a fresh `trk` token to every link of
every page, as real markets do. Without `urls.query_params` each listing would be fetched
once per page linking it, and pagination would never end (page 2 links page 3, which
links page 2 under a new token). With it, every page is fetched once, completeness counts
listings rather than URLs, and the run is complete.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import urllib.error
import urllib.request
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from subprocesses import run_cli

from crawler.sources.loader import DEFAULT_SOURCES_DIR, load_source
from crawler.urls import canonical_url, entity_key, page_identity
from fixtures.market import truth
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pipelines.store.embedded import EmbeddedMongo

_HREF = re.compile(r'href="(/[^"]*)"')
_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding"}


class TrackingProxy:
    """The market with a per-request token added to every link; counts what is asked."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.asked: Counter[str] = Counter()
        tokens = itertools.count(1)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.asked[canonical_url("http://m" + self.path, ["page"])] += 1
                try:
                    with urllib.request.urlopen(proxy.upstream + self.path) as reply:
                        status, headers, body = reply.status, reply.headers, reply.read()
                except urllib.error.HTTPError as exc:
                    status, headers, body = exc.code, exc.headers, exc.read()
                if "text/html" in headers.get("Content-Type", ""):
                    text = body.decode("utf-8")
                    body = _HREF.sub(lambda m: _tagged(m.group(1), next(tokens)), text).encode()
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in _HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _tagged(path: str, token: int) -> str:
    return f'href="{path}{"&" if "?" in path else "?"}trk={token}"'


def _tracked_source(text: str) -> str:
    """demo.yaml for a market whose links carry a query: keys read before the query."""
    for kind in ("listing", "vendor"):
        text = text.replace(f'url_regex: "/{kind}/[^/?#]+$"', f'url_regex: "/{kind}/[^/?#]+"')
        text = text.replace(
            f'url_regex: "/{kind}/([^/?#]+)$"', f'url_regex: "/{kind}/([^/?#]+)(?:[?#]|$)"'
        )
    return text + "\nurls: {query_params: [page]}\n"


@pytest.fixture(scope="module")
def tracked_crawl(
    mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("sources")
    (folder / "demo.yaml").write_text(
        _tracked_source((DEFAULT_SOURCES_DIR / "demo.yaml").read_text())
    )
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"tracked_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path_factory.mktemp("home")),
        "DARKARCHIVE_SOURCES_DIR": str(folder),
    }
    with FixtureServer(market="demo", day=1) as server:
        proxy = TrackingProxy(server.url)
        try:
            crawl = run_cli("crawl", "demo", "--mirror", proxy.url, env=env)
            export = run_cli("export", "demo", env=env).stdout
        finally:
            proxy.close()
    lines = [json.loads(line) for line in export.splitlines()]
    yield {"asked": proxy.asked, "crawl": crawl, "lines": lines, "env": env, "folder": folder}


def test_every_page_is_fetched_once_whatever_token_its_links_carry(
    tracked_crawl: dict[str, Any],
) -> None:
    asked: Counter[str] = tracked_crawl["asked"]
    twice = {url: n for url, n in asked.items() if n > 1}
    assert not twice, sorted(twice.items())[:5]
    listings = [u for u in asked if urlsplit(u).path.startswith("/listing/")]
    assert len(listings) == len(truth("demo", 1)["listings"])


def test_the_run_counts_listings_not_urls_and_is_complete(tracked_crawl: dict[str, Any]) -> None:
    run, *entities = tracked_crawl["lines"]
    assert run["status"] == "complete", run["reasons"]
    counts = run["counts"]
    assert counts["listing_links"] == len(truth("demo", 1)["listings"])
    listings = {e["key"] for e in entities if e["kind"] == "listing"}
    assert listings == {t["listing_id"] for t in truth("demo", 1)["listings"]}


def test_a_link_is_known_by_its_key_before_it_is_fetched(tracked_crawl: dict[str, Any]) -> None:
    os.environ["DARKARCHIVE_SOURCES_DIR"], old = (
        str(tracked_crawl["folder"]),
        os.environ.get("DARKARCHIVE_SOURCES_DIR"),
    )
    try:
        source = load_source("demo")
    finally:
        if old is None:
            del os.environ["DARKARCHIVE_SOURCES_DIR"]
        else:
            os.environ["DARKARCHIVE_SOURCES_DIR"] = old
    assert entity_key(source, "listing", "http://m/listing/l10384?trk=9&from=vendor") == "l10384"
    assert page_identity(source, "listing", "http://a/listing/l1?trk=1") == page_identity(
        source, "listing", "http://b/listing/l1?trk=2"
    )
    assert page_identity(source, "index", "http://m/category/x?trk=3&page=2") == (
        "/category/x?page=2"
    )
