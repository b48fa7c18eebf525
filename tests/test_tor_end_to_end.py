"""The demo market as a real onion service on a private Tor network on loopback.

Crawled through Tor by the `darkarchive` CLI in its own process, it must give exactly the
archive that the clearnet crawl of the same day gives; each source gets circuits of its
own; and `darkarchive tor check` reports what the team needs to see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
import yaml
from exports import comparable_export
from subprocesses import processes_mentioning, run_cli

from crawler.replay import replay
from crawler.sources.loader import DEFAULT_SOURCES_DIR, load_source
from crawler.tor.control import TorControl
from fixtures.market import truth

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fixtures.onion import OnionMarket
    from pipelines.store.embedded import EmbeddedMongo


@pytest.fixture(scope="module")
def tor_env(
    mongo_server: EmbeddedMongo, onion_demo: OnionMarket, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], pymongo.database.Database]]:
    """The CLI's environment: its own database, and the private network as an external tor."""
    home: Path = tmp_path_factory.mktemp("home")
    config = home / "tor.yaml"
    config.write_text(onion_demo.tor_config(), encoding="utf-8")
    sources = home / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, sources)
    name = f"tor_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(home),
        "DARKARCHIVE_TOR_CONFIG": str(config),
        "DARKARCHIVE_SOURCES_DIR": str(sources),
    }
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    yield env, client[name]
    client.drop_database(name)
    client.close()


def test_onion_crawl_archives_exactly_what_the_clearnet_crawl_archives(
    tor_env: Any, onion_demo: OnionMarket
) -> None:
    env, db = tor_env
    served = onion_demo.server.requests_served
    crawl = run_cli("crawl", "demo-onion", env=env)
    assert "run demo-onion:000001: complete" in crawl.stdout, crawl.stdout
    assert "tor: bootstrapped 100%" in crawl.stderr
    over_tor = onion_demo.server.requests_served - served
    run_cli("crawl", "demo", "--mirror", onion_demo.server.url, env=env)

    onion, clear = (
        comparable_export("demo-onion", onion_demo.url, env),
        comparable_export("demo", onion_demo.server.url, env),
    )
    run_onion, run_clear = onion[-1], clear[-1]
    assert run_onion.pop("source") == "demo-onion" and run_clear.pop("source") == "demo"
    assert run_onion == run_clear
    assert run_onion["counts"]["listing"]["observed"] == 340
    assert over_tor == run_onion["counts"]["pages"] == 401
    assert len(onion) == len(clear) > 340 + 30
    assert onion == clear

    run = db.runs.find_one({"_id": "demo-onion:000001"})
    assert run["config"]["network"] == "tor"
    urls = db.pages.distinct("url", {"run": "demo-onion:000001"})
    assert len(urls) == 401 and all(u.startswith(onion_demo.url + "/") for u in urls)


def test_each_source_gets_circuits_of_its_own(tor_env: Any, onion_demo: OnionMarket) -> None:
    env, _db = tor_env
    second = (
        "extends: demo-onion\nid: demo-onion-b\nname: the same market, a second account\n"
        "tor: {socks_username: account-b}\n"
    )
    path = os.path.join(env["DARKARCHIVE_SOURCES_DIR"], "demo-onion-b.yaml")
    with open(path, "w", encoding="utf-8") as file:
        file.write(second)
    for source in ("demo-onion", "demo-onion-b"):
        run_cli("crawl", source, "-s", "CLOSESPIDER_PAGECOUNT=10", env=env, code=4)  # partial
    with TorControl.connect(onion_demo.endpoint) as control:
        groups = control.circuits_by_username()
    assert {"demo-onion", "account-b"} <= set(groups), groups
    first = {c.id for c in groups["demo-onion"]}
    second_ids = {c.id for c in groups["account-b"]}
    assert first and second_ids and not first & second_ids


def test_tor_check_reports_bootstrap_fetch_and_circuits(
    tor_env: Any, onion_demo: OnionMarket
) -> None:
    env, _db = tor_env
    result = run_cli("tor", "check", "demo-onion", env=env)
    out = result.stdout
    assert "tor: external mode" in out
    assert "bootstrapped 100% Done" in out
    assert f"demo-onion: GET {onion_demo.url}/ -> HTTP 200" in out
    assert "circuit " in out and "(HS_CLIENT_REND)" in out
    assert "demo-onion: " in out.split("isolation groups")[1]


def test_save_page_of_a_tor_source_goes_through_tor(
    tor_env: Any, onion_demo: OnionMarket, tmp_path: Path
) -> None:
    env, _db = tor_env
    listing = truth("demo", 1)["listings"][0]["listing_id"]
    url = f"{onion_demo.url}/listing/{listing}"
    served = onion_demo.server.requests_served
    run_cli(
        "fixtures", "save-page", "demo-onion", url, "--kind", "listing", "--case", "over-tor",
        "--root", str(tmp_path), env=env,
    )  # fmt: skip
    assert onion_demo.server.requests_served == served + 1
    case = tmp_path / "demo-onion" / "listing" / "over-tor"
    expected = json.loads((case / "output.json").read_text(encoding="utf-8"))
    assert replay(load_source("demo-onion"), case) == expected
    assert expected["records"][0]["key"] == listing


def test_managed_tor_bootstraps_with_progress_crawls_and_is_stopped(
    tor_env: Any, onion_demo: OnionMarket, tmp_path: Path
) -> None:
    """darkarchive starts its own tor (here told to join the private network) and stops it."""
    env, db = tor_env
    data_dir = tmp_path / "managed-tor"
    config = tmp_path / "managed.yaml"
    managed = {"data_dir": str(data_dir), "options": onion_demo.network.client_options()}
    config.write_text(yaml.safe_dump({"mode": "managed", "managed": managed}), encoding="utf-8")
    result = run_cli("crawl", "demo-onion", env={**env, "DARKARCHIVE_TOR_CONFIG": str(config)})
    progress = re.findall(r"tor: bootstrapped (\d+)%", result.stderr)
    assert "tor: managed mode" in result.stderr
    assert len(progress) >= 2 and progress[-1] == "100", result.stderr
    run_id = re.search(r"run (demo-onion:\d+): complete", result.stdout)
    assert run_id, result.stdout
    assert db.runs.find_one({"_id": run_id.group(1)})["counts"]["pages"] == 401
    assert (data_dir / "torrc").is_file()
    assert processes_mentioning(str(data_dir)) == [], "the managed tor outlived the crawl"


def test_fixtures_serve_onion_puts_the_market_behind_an_onion(tmp_path: Path) -> None:
    """The team's command: its own private network, a config to crawl it, Ctrl-C ends all."""
    env = {**os.environ, "DARKARCHIVE_HOME": str(tmp_path)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "fixtures", "serve", "--onion"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        lines = []
        for line in serve.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        onion = load_source("demo-onion").mirrors[0]
        assert f"fixture market 'demo' day 1 at {onion}" in text, text
        config = re.search(r"DARKARCHIVE_TOR_CONFIG=(\S+) darkarchive crawl demo-onion", text)
        assert config, text
        check = run_cli(
            "tor", "check", "demo-onion", env={**env, "DARKARCHIVE_TOR_CONFIG": config[1]}
        )
        assert f"demo-onion: GET {onion}/ -> HTTP 200" in check.stdout
    finally:
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0
    assert processes_mentioning(str(tmp_path / "tornet")) == []
    assert [p.name for p in (tmp_path / "tornet").iterdir()] == ["tor.yaml"]
