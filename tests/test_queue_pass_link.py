"""A DDoS queue whose meta-refresh names a pass link: the crawl waits once, follows the link,
and asks nothing again (it used to ask the queued URL five more times, log "recorded as a
queue page", and only then let Scrapy's meta-refresh follow the link)."""

from __future__ import annotations

import os
import time
import uuid
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

import pymongo
from subprocesses import run_cli

from fixtures.hostile import Answer, HostileState, Hostility
from fixtures.market import truth
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pipelines.store.embedded import EmbeddedMongo

PASS_PATH = "/queue/pass"


class PassLinkQueue(HostileState):
    """The queue of markets that hand out a token and name a pass link in the refresh: the
    token lets requests through only once its pass link was asked after the wait, and the
    pass link redirects to the page that was queued. Asking the queued URL again never
    passes. Every other request is the market's own page."""

    def __init__(self, market: str, seconds: float) -> None:
        super().__init__(Hostility(), market)
        self.seconds = seconds
        self.issued: dict[str, float] = {}
        self.passed: set[str] = set()
        self.queue_pages = 0
        self.pass_requests = 0

    def answer(self, path: str, cookies: Mapping[str, str], *args: Any) -> Answer:
        url = urlsplit(path)
        token, target = cookies.get("queue_pass", ""), path
        headers: tuple[tuple[str, str], ...] = ()
        with self._lock:
            if url.path == PASS_PATH:
                self.pass_requests += 1
                query = parse_qs(url.query)
                token, target = query["token"][0], query["next"][0]
                issued = self.issued.get(token)
                if issued is not None and time.monotonic() - issued >= self.seconds:
                    self.passed.add(token)
                    cookie = f"queue_pass={token}; Path=/"
                    return Answer("queue", 302, "", (("Location", target), ("Set-Cookie", cookie)))
            through = url.path != PASS_PATH and token in self.passed
            if not through:
                if token not in self.issued:
                    token = f"pass-{len(self.issued) + 1:06d}"
                    self.issued[token] = time.monotonic()
                    headers = (("Set-Cookie", f"queue_pass={token}; Path=/"),)
                self.queue_pages += 1
        if through:
            return super().answer(path, cookies, *args)
        link = f"{PASS_PATH}?token={token}&next={quote(target, safe='/')}"
        return Answer("queue", 200, _queue_page(self.seconds, link), headers)


def _queue_page(seconds: float, link: str) -> str:
    return (
        "<!DOCTYPE html><html><head><title>Please wait | DDoS protection</title>\n"
        f'<meta http-equiv="refresh" content="{seconds:g}; url={escape(link)}">\n'
        '</head><body><div id="queue">You are in the queue…</div>\n'
        f"<p>You will be let in in {seconds:g} s.</p></body></html>\n"
    )


def test_a_queue_pass_link_is_followed_once(mongo_server: EmbeddedMongo, tmp_path: Path) -> None:
    name = f"queue_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
    }
    with FixtureServer(market="demo", day=1) as server:
        queue = PassLinkQueue("demo", seconds=1.0)
        server.hostile = queue
        run_cli("crawl", "demo", "--mirror", server.url, env=env)
        stats, served = server.stats, server.requests_served
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    try:
        db = client[name]
        run = db.runs.find_one(sort=[("seq", -1)])
        assert run is not None and run["status"] == "complete", run
        events = [e["reason"] for e in db.run_events.find({"run": run["_id"]})]
        listings = db.pages.count_documents({"run": run["_id"], "state": "listing"})
        queued = db.pages.count_documents({"run": run["_id"], "state": "queue"})
    finally:
        client.drop_database(name)
        client.close()
    # The start page meets the queue; every later request carries the pass.
    assert (queue.queue_pages, queue.pass_requests) == (1, 1)
    assert served == stats["content"] + 2 and stats["queue"] == 2
    assert [e for e in events if "queue" in e] == [
        f"DDoS queue: waiting 1.0 s, then following the pass link it names ({PASS_PATH})"
    ]
    assert listings == len(truth("demo", 1)["listings"]) and queued == 0
