"""The demo market turned hostile, crawled end to end by the CLI into the real archive.

Each behaviour comes from the fixture server (`fixtures/hostile.py`). The checks: the run
gets the status the situation deserves, with the reason; nothing from a challenge page is
archived as a listing (every archived listing is one of the market's, as the truth has
it); a session that expires mid-crawl pauses the source and delists nothing; storms of
429/503, queues, CAPTCHAs, slow and hanging responses, a dying mirror and a pagination
trap still end in a complete run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pymongo
import pytest

from crawler.sources.loader import DEFAULT_SOURCES_DIR
from fixtures.hostile import Hostility
from fixtures.market import truth
from fixtures.server import FixtureServer
from pipelines.store.queries import delisted

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymongo.database import Database

    from pipelines.store.embedded import EmbeddedMongo

SESSION = "s3cr3t-session-value"
FAST = ["-s", "CHALLENGE_BACKOFF_BASE=0.05", "-s", "CHALLENGE_BACKOFF_MAX=3"]


MARKETS = ["demo", "classic", "grid", "shop", "rynok", "bazaar"]
# The fixture server sets its pagination trap (an endless "next") on the layouts that draw a
# "next" link: demo ("Next"), grid ("Load more") and shop ("suivant"); classic numbers its pages.
# (bazaar's "Next →" is not trapped: fixtures/hostile.py has no trap in its markup yet.)
TRAPPED_LAYOUTS = {"demo", "grid", "shop"}


@dataclass
class Hostile:
    """One market's crawl setup: the CLI's environment, its database, and its truth."""

    market: str
    env: dict[str, str]
    db: Database[Any]

    def crawl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl",
             self.market, *args],
            capture_output=True, text=True, timeout=600, env=self.env,
        )  # fmt: skip

    def server(self, hostility: Hostility, day: int = 1) -> FixtureServer:
        return FixtureServer(market=self.market, day=day, hostility=hostility)

    def listings(self, day: int) -> int:
        return len(truth(self.market, day)["listings"])

    def only_true_listings(self, *days: int) -> set[str]:
        """Every archived listing is one the market really had: no challenge page became one."""
        keys = {d["key"] for d in self.db.listing_versions.find({}, {"key": 1})}
        real = {t["listing_id"] for day in days for t in truth(self.market, day)["listings"]}
        assert keys <= real
        return keys


@pytest.fixture(params=MARKETS)
def hostile(
    request: pytest.FixtureRequest, mongo_server: EmbeddedMongo, tmp_path: Path
) -> Iterator[Hostile]:
    """Each fixture market in turn; its source wants a session cookie from MARKET_SESSION."""
    market = str(request.param)
    sources = tmp_path / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, sources)
    source = sources / f"{market}.yaml"
    source.write_text(
        source.read_text(encoding="utf-8")
        + "\nsession:\n  cookies:\n    session: {env: MARKET_SESSION}\n",
        encoding="utf-8",
    )
    name = f"hostile_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
        "DARKARCHIVE_SOURCES_DIR": str(sources),
        "MARKET_SESSION": SESSION,
    }
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    yield Hostile(market, env, client[name])
    client.drop_database(name)
    client.close()


def _latest_run(db: Database[Any]) -> dict[str, Any]:
    run = db.runs.find_one(sort=[("seq", -1)])
    assert run is not None
    return run


def _events(db: Database[Any], run: dict[str, Any], kind: str) -> list[str]:
    return [e["reason"] for e in db.run_events.find({"run": run["_id"], "kind": kind})]


@pytest.mark.parametrize(
    ("hostility", "event"),
    [
        (Hostility(session_cookie=SESSION, queue_seconds=1.0), "DDoS queue: waiting"),
        (Hostility(session_cookie=SESSION, rate_limit=(5, 40)), "rate_limited (HTTP 429"),
        (Hostility(session_cookie=SESSION, unavailable=(5, 40)), "(HTTP 503"),
        (Hostility(session_cookie=SESSION, captcha_every=40), "captcha (HTTP 200"),
    ],
    ids=["queue", "429-storm", "503-storm", "captcha"],
)
def test_challenges_are_waited_out_and_the_run_completes(
    hostile: Hostile, hostility: Hostility, event: str
) -> None:
    with hostile.server(hostility) as server:
        result = hostile.crawl("--mirror", server.url, *FAST)
        challenged = sum(v for k, v in server.stats.items() if k != "content")
    run = _latest_run(hostile.db)
    assert run["status"] == "complete", (run["reasons"], result.stderr[-2000:])
    assert challenged > 0, "the server was not hostile"
    events = _events(hostile.db, run, "challenge")
    assert any(event in e for e in events), events
    listings = hostile.listings(1)
    assert len(hostile.only_true_listings(1)) == listings
    assert hostile.db.pages.count_documents({"run": run["_id"], "state": "listing"}) == listings


def test_slow_and_hanging_responses_are_retried_and_the_run_completes(hostile: Hostile) -> None:
    hostility = Hostility(
        session_cookie=SESSION, slow_every=25, slow_seconds=1.0, hang_every=90, hang_seconds=4
    )
    with hostile.server(hostility) as server:
        hostile.crawl("--mirror", server.url, "-s", "DOWNLOAD_TIMEOUT=2")
        assert server.stats["slow"] > 0 and server.stats["timeout"] > 0
    run = _latest_run(hostile.db)
    assert run["status"] == "complete", run["reasons"]
    assert len(hostile.only_true_listings(1)) == hostile.listings(1)


def test_a_pagination_trap_does_not_hold_the_crawl(hostile: Hostile) -> None:
    with hostile.server(Hostility(session_cookie=SESSION, pagination_trap=True)) as server:
        hostile.crawl("--mirror", server.url)
        trapped = server.stats["trap"]
    run = _latest_run(hostile.db)
    assert run["status"] == "complete", run["reasons"]
    assert len(hostile.only_true_listings(1)) == hostile.listings(1)
    # Per paginated run of pages (a category; a shop, i.e. a vendor, in the shop layout) at
    # most its last real page and one empty page past it.
    facts = truth(hostile.market, 1)
    paginated = len(facts["vendors"] if hostile.market == "shop" else facts["counts"])
    assert trapped <= 2 * paginated, "it followed the trap"
    assert (trapped > 0) == (hostile.market in TRAPPED_LAYOUTS), "trap set or not as built"


def test_a_mirror_that_dies_mid_crawl_hands_over_to_the_other(hostile: Hostile) -> None:
    dying = Hostility(session_cookie=SESSION, die_after=60)
    with (
        hostile.server(dying) as first,
        hostile.server(Hostility(session_cookie=SESSION)) as second,
    ):
        urls = first.url, second.url
        hostile.crawl("--mirror", urls[0], "--mirror", urls[1])
        assert first.requests_served >= 60 and second.requests_served > 0
    run = _latest_run(hostile.db)
    assert run["status"] == "complete", run["reasons"]
    (switched,) = _events(hostile.db, run, "mirror")
    assert switched.startswith(f"mirror {urls[0]} unreachable (")
    assert switched.endswith(f"switching to {urls[1]}")
    assert len(hostile.only_true_listings(1)) == hostile.listings(1)


def test_session_expiry_pauses_the_source_tells_the_team_and_delists_nothing(
    hostile: Hostile, tmp_path: Path
) -> None:
    db, market = hostile.db, hostile.market
    told = tmp_path / "notified.txt"
    hostile.env["DARKARCHIVE_NOTIFY_COMMAND"] = (
        f"sh -c 'echo $DARKARCHIVE_EVENT $DARKARCHIVE_SOURCE $DARKARCHIVE_RUN >> {told}'"
    )
    with hostile.server(Hostility(session_cookie=SESSION)) as server:
        hostile.crawl("--mirror", server.url)
        assert _latest_run(db)["status"] == "complete"
        server.set_day(2)
        server.set_hostility(Hostility(session_cookie=SESSION, session_expires_after=100))
        result = hostile.crawl("--mirror", server.url)
    run = _latest_run(db)
    assert run["status"] == "partial", run["reasons"]
    assert "crawl stopped early: session_expired" in run["reasons"]
    assert f"source {market} paused" in result.stderr
    paused = _events(db, run, "session")[0]
    assert "session expired or was never valid" in paused
    assert delisted(db, market, run["_id"]) == [], "a partial run must not delist"
    login_urls = db.pages.distinct("url", {"run": run["_id"], "state": "login_wall"})
    assert login_urls
    made_now = {"provenance.run_id": run["_id"], "provenance.url": {"$in": login_urls}}
    assert not db.listing_versions.find_one(made_now)
    hostile.only_true_listings(1, 2)
    # The pause is told as it happens, then the run's alerts once it has closed.
    first, *alerts = told.read_text().splitlines()
    assert first.split() == ["session_expired", market, run["_id"]]
    assert ["alert", market, run["_id"]] in [line.split() for line in alerts]
    assert result.returncode == 4, result.stderr[-3000:]  # partial


def test_no_valid_session_fetches_login_pages_only_and_fails(hostile: Hostile) -> None:
    hostile.env["MARKET_SESSION"] = "not-the-session"
    with hostile.server(Hostility(session_cookie=SESSION)) as server:
        hostile.crawl("--mirror", server.url)
        assert server.stats["content"] == 0
    run = _latest_run(hostile.db)
    assert run["status"] == "failed"
    assert hostile.db.pages.distinct("state", {"run": run["_id"]}) == ["login_wall"]
    assert hostile.db.listing_versions.count_documents({}) == 0


def test_maintenance_is_recorded_as_such_and_archives_nothing(hostile: Hostile) -> None:
    with hostile.server(Hostility(session_cookie=SESSION, maintenance=True)) as server:
        hostile.crawl("--mirror", server.url, *FAST, "-s", "CHALLENGE_BACKOFF_RETRIES=2")
        # one request per page asked first (rynok's rates page, then the start page), two
        # retries each
        firsts = 2 if hostile.market == "rynok" else 1
        assert server.stats["maintenance"] == 3 * firsts, "one request, two retries"
    run = _latest_run(hostile.db)
    assert run["status"] == "failed"
    assert hostile.db.pages.distinct("state", {"run": run["_id"]}) == ["maintenance"]
    assert hostile.db.listing_versions.count_documents({}) == 0
