"""Session fixtures: one real secantusdb server, one private Tor network on loopback."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
from exports import comparable_export
from subprocesses import pid_alive, run_cli

from crawler.sources.loader import DEFAULT_SOURCES_DIR
from fixtures.market.accuracy import crawl_days
from fixtures.onion import OnionMarket, serve_as_onion
from fixtures.server import FixtureServer
from fixtures.tornet import PrivateTorNetwork
from pipelines.store.archive import Archive
from pipelines.store.embedded import EmbeddedMongo

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymongo.database import Database


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMongo]:
    with EmbeddedMongo(tmp_path_factory.mktemp("mongo")) as server:
        yield server


@pytest.fixture(scope="session")
def mongo_client(mongo_server: EmbeddedMongo) -> Iterator[pymongo.MongoClient]:
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def db(mongo_client: pymongo.MongoClient) -> Iterator[Database]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    mongo_client.drop_database(name)


@pytest.fixture
def crawl_env(
    mongo_server: EmbeddedMongo, tmp_path: Path
) -> Iterator[tuple[dict[str, str], Database[Any], Path]]:
    """An environment for the CLI with its own database and its own copy of the sources."""
    sources = tmp_path / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, sources)
    name = f"crawl_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
        "DARKARCHIVE_SOURCES_DIR": str(sources),
    }
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    yield env, client[name], sources
    client.drop_database(name)
    client.close()


@pytest.fixture
def archive(db: Database) -> Archive:
    store = Archive(db)
    store.ensure_indexes()
    return store


NETWORK_TIMINGS: list[dict[str, float]] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A test worker (pytest-xdist) hands its networks' timings to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["tor_network_timings"] = NETWORK_TIMINGS


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """The controller collects what each worker handed over (pytest-xdist's hook)."""
    NETWORK_TIMINGS.extend(getattr(node, "workeroutput", {}).get("tor_network_timings", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How long each private Tor network took to be ready, in every CI log."""
    for timings in NETWORK_TIMINGS:
        figures = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in timings.items())
        terminalreporter.write_line(f"private Tor network: {figures}")


@pytest.fixture(scope="session")
def tor_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateTorNetwork]:
    """One private Tor network on loopback for the whole session, stopped by PID at the end."""
    started = time.monotonic()
    with PrivateTorNetwork(tmp_path_factory.mktemp("tornet")) as network:
        network.timings["ready"] = time.monotonic() - started
        NETWORK_TIMINGS.append(network.timings)
        yield network
    pids = network.pids
    assert len(pids) == 8, pids
    alive = [pid for pid in pids if pid_alive(pid)]
    assert not alive, f"tor processes {alive} outlived the network's stop()"


@pytest.fixture(scope="session")
def onion_demo(tor_network: PrivateTorNetwork) -> Iterator[OnionMarket]:
    """The demo market on day 1 as a real onion service (the address of demo-onion.yaml)."""
    with FixtureServer(market="demo", day=1) as server:
        url = serve_as_onion(tor_network, server, "demo")
        yield OnionMarket(server, tor_network, url)


@pytest.fixture(scope="module")
def exports(
    mongo_server: EmbeddedMongo,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> list[Any]:
    """The test module's MARKET crawled by the CLI on days 1 and 2; each run's export."""
    market: str = request.module.MARKET
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"{market}_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path_factory.mktemp("home")),
    }
    with FixtureServer(market=market, day=1) as server:
        return crawl_days(market, [1, 2], server, env)


@pytest.fixture(scope="session")
def reference(
    mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FixtureServer, list[Any]]]:
    """The demo market on day 1 and the export of one undisturbed crawl of it: what an
    interrupted, resumed or spooled crawl of the same market must equal."""
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"reference_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path_factory.mktemp("reference")),
    }
    with FixtureServer(market="demo", day=1) as market:
        run_cli("crawl", "demo", "--mirror", market.url, env=env)
        yield market, comparable_export("demo", market.url, env)
