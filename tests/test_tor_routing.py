"""A Tor source's requests leave only via Tor's SOCKS port, with its username, onions unresolved."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from scrapy import Request, Spider
from scrapy.settings import Settings
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler
from tor_helpers import FakeSocks5, crawl_env, scrapy_crawl, tor_source_yaml, valid_onion

from crawler.middlewares.onion_guard import OnionGuard, RefusedOnion
from crawler.middlewares.tor_routing import RefusedByTorPolicy, TorRouting
from crawler.sources.loader import DEFAULT_SOURCES_DIR, load_source
from crawler.sources.model import SecretRef, SourceTor
from crawler.tor.endpoint import TorEndpoint
from fixtures.server import FixtureServer
from fixtures.tornet import onion_key

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymongo.database import Database

    from crawler.sources.model import Source
    from pipelines.store.embedded import EmbeddedMongo

DEMO = load_source(str(DEFAULT_SOURCES_DIR / "demo.yaml"))
ONION = onion_key("tor-routing")[1]  # fixed: it is in test ids, the same on every xdist worker
SOCKS = "127.0.0.1:9050"


def _tor_source(**tor: Any) -> Source:
    return DEMO.model_copy(
        update={"network": "tor", "mirrors": [f"http://{ONION}"], "tor": SourceTor(**tor)}
    )


def _routing(source: Source, **settings: Any) -> TorRouting:
    crawler = get_crawler(settings_dict=settings)
    spider = Spider(name="market")
    spider.source = source  # type: ignore[attr-defined]
    crawler.spider = spider
    return build_from_crawler(TorRouting, crawler)


@pytest.mark.parametrize(
    ("tor", "username"),
    [({}, "demo"), ({"socks_username": "demo-account-2"}, "demo-account-2")],
    ids=["source id", "tor.socks_username"],
)
def test_tor_source_requests_get_tor_s_socks5h_proxy_with_the_source_username(
    tor: dict[str, Any], username: str
) -> None:
    routing = _routing(_tor_source(**tor), TOR_SOCKS=SOCKS)
    request = Request(f"http://{ONION}/listing/1")
    routing.process_request(request)
    assert request.meta["proxy"] == f"socks5h://{username}:darkarchive@{SOCKS}"
    assert request.meta["tor"] is True
    OnionGuard().process_request(request)  # the onion guard lets it pass


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/",
        "https://127.0.0.1:8800/listing/1",
        f"http://{ONION[:-6]}.onion.example.org/",
        f"http://{ONION}@example.org/",
        f"http://example.org/?next={ONION}",
        "http://[::1]/",
    ],
)
def test_a_tor_source_may_not_leave_the_onion(url: str) -> None:
    routing = _routing(_tor_source(), TOR_SOCKS=SOCKS)
    request = Request(url)
    with pytest.raises(RefusedByTorPolicy) as caught:
        routing.process_request(request)
    host = (urlsplit(url).hostname or "").lower()
    assert str(caught.value) == (
        f"refused {url}: {host} is not an onion host and source demo does not allow it "
        "(tor.allow_hosts)"
    )
    assert "proxy" not in request.meta


def test_an_allowed_host_is_reached_and_still_only_through_tor() -> None:
    routing = _routing(_tor_source(allow_hosts=["cdn.example.org"]), TOR_SOCKS=SOCKS)
    request = Request("https://CDN.example.org./static/app.css")
    routing.process_request(request)
    assert request.meta["proxy"] == f"socks5h://demo:darkarchive@{SOCKS}"
    with pytest.raises(RefusedByTorPolicy, match=r"www\.example\.org is not an onion host"):
        routing.process_request(Request("https://www.example.org/"))


def test_without_tor_a_tor_source_sends_nothing() -> None:
    routing = _routing(_tor_source(allow_hosts=["cdn.example.org"]))
    for url in (f"http://{ONION}/", "https://cdn.example.org/"):
        request = Request(url)
        with pytest.raises(RefusedByTorPolicy, match="Tor is not configured for this crawl"):
            routing.process_request(request)
        assert "proxy" not in request.meta


def test_clearnet_sources_are_not_touched() -> None:
    routing = _routing(DEMO, TOR_SOCKS=SOCKS)
    request = Request("http://127.0.0.1:8800/")
    routing.process_request(request)
    assert "proxy" not in request.meta and "tor" not in request.meta
    onion = Request(f"http://{ONION}/")  # an onion link on a clearnet source: never resolved
    routing.process_request(onion)
    with pytest.raises(RefusedOnion):
        OnionGuard().process_request(onion)


@pytest.mark.parametrize(
    "endpoint",
    [
        TorEndpoint(socks="127.0.0.1:19050"),
        TorEndpoint("127.0.0.1:19050", "127.0.0.1:19051", "/run/tor/control.authcookie"),
        TorEndpoint("127.0.0.1:19050", "127.0.0.1:19051", password=SecretRef(env="TOR_PW")),
        TorEndpoint("127.0.0.1:19050", "127.0.0.1:19051", password=SecretRef(file="~/tor-pw")),
    ],
    ids=["socks only", "cookie", "password env", "password file"],
)
def test_endpoint_travels_through_settings_unchanged(endpoint: TorEndpoint) -> None:
    settings = endpoint.settings()
    assert all(isinstance(value, str) for value in settings.values()), "names, not secrets"
    assert TorEndpoint.from_settings(Settings(settings)) == endpoint
    assert _routing(_tor_source(), **settings).endpoint == endpoint


def test_no_socks_setting_means_no_endpoint() -> None:
    assert TorEndpoint.from_settings(Settings({"TOR_CONTROL": "127.0.0.1:9051"})) is None


@pytest.fixture
def env_db(
    mongo_server: EmbeddedMongo, tmp_path: Path
) -> Iterator[tuple[dict[str, str], Database[Any]]]:
    with crawl_env(mongo_server.uri, tmp_path) as pair:
        yield pair


def test_a_tor_crawl_carries_the_source_username_and_the_unresolved_onion(
    env_db: tuple[dict[str, str], Database[Any]], tmp_path: Path
) -> None:
    """The whole demo market, crawled as an onion through a SOCKS server that relays to it."""
    env, db = env_db
    onion = valid_onion()
    tor_source_yaml(tmp_path / "sources", f"http://{onion}")
    with FixtureServer(market="demo", day=1) as market:
        market_port = urlsplit(market.url).port
        assert market_port is not None
        with FakeSocks5(reply=0x00, upstream=("127.0.0.1", market_port)) as socks:
            result = scrapy_crawl(env, f"http://{onion}", f"TOR_SOCKS={socks.address}")
            requests = list(socks.requests)
        served = market.requests_served
    assert result.returncode == 0, result.stderr[-3000:]
    assert requests, "nothing reached the SOCKS server"
    assert {(r.username, r.password) for r in requests} == {("demo", "darkarchive")}
    assert {(r.atyp, r.host, r.port) for r in requests} == {(0x03, onion, 80)}
    assert served == 401 == db.pages.count_documents({"url": {"$regex": f"^http://{onion}/"}})
    run = db.runs.find_one({"_id": "demo:000001"})
    assert run is not None
    assert run["status"] == "complete", run.get("reasons")
    assert run["config"] == {
        "mirror": f"http://{onion}",
        "mirrors": [f"http://{onion}"],
        "network": "tor",
        "volatile": [{"css": "footer.page-meta"}],  # the demo source's noise block
    }
    assert db.listings.count_documents({}) == 340


def test_an_onion_tor_refuses_fails_the_run_with_tor_s_reason(
    env_db: tuple[dict[str, str], Database[Any]], tmp_path: Path
) -> None:
    """0xF4 (the onion wants client authorization): given up at once, recorded on the run."""
    env, db = env_db
    onion = valid_onion()
    tor_source_yaml(tmp_path / "sources", f"http://{onion}", tor={"socks_username": "acct-7"})
    with FakeSocks5(reply=0xF4) as socks:
        result = scrapy_crawl(env, f"http://{onion}", f"TOR_SOCKS={socks.address}")
        requests = list(socks.requests)
    assert result.returncode == 0, result.stderr[-3000:]
    (request,) = requests  # give_up: no retry
    assert (request.username, request.atyp, request.host) == ("acct-7", 0x03, onion)
    run = db.runs.find_one({"_id": "demo:000001"})
    assert run is not None
    assert run["status"] == "failed"
    assert run["reasons"] == ["no listing or vendor page was parsed (0 content pages)"]
    (tor_event,) = db.run_events.find({"run": "demo:000001", "kind": "tor"})
    assert tor_event["url"] == f"http://{onion}/"
    assert tor_event["reason"].startswith(
        "attempt 1: onion service missing client authorization (SOCKS 0xF4): "
    )
    assert tor_event["detail"] == {"code": 0xF4, "action": "give_up", "attempt": 1}
    (page,) = db.pages.find({"run": "demo:000001"})
    assert page["state"] == "error" and page["sha256"] is None
    assert "onion service missing client authorization [0xF4]" in page["error"]
