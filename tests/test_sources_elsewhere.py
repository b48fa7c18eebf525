"""A team's own source kept outside the repository: found on the sources search path,
crawled, and its saved cases replayed by `darkarchive fixtures test`, while the project's
own sources still load."""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING

import pymongo
import pytest
import yaml
from subprocesses import run_cli

from crawler.sources.loader import (
    DEFAULT_SOURCES_DIR,
    SourceConfigError,
    load_source,
    source_files,
    sources_path,
)
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from pathlib import Path

    from pipelines.store.embedded import EmbeddedMongo

LEAF = "/category/cannabis-flower-indica"  # one category of the demo market, with listings


def _team_source(folder: Path) -> Path:
    """`teamdemo`: the demo market's layout, crawled from one category only."""
    data = yaml.safe_load((DEFAULT_SOURCES_DIR / "demo.yaml").read_text(encoding="utf-8"))
    data.update(id="teamdemo", name="A team's own market", start_pages=[LEAF])
    data["follow"]["index"] = []
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "teamdemo.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_the_search_path_puts_earlier_folders_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _team_source(second)
    first.mkdir()
    mine = yaml.safe_load((DEFAULT_SOURCES_DIR / "demo.yaml").read_text(encoding="utf-8"))
    mine["name"] = "our own demo"
    (first / "demo.yaml").write_text(yaml.safe_dump(mine), encoding="utf-8")
    monkeypatch.setenv("DARKARCHIVE_SOURCES_DIR", f"{first}{os.pathsep}{second}")

    assert sources_path() == [first, second, DEFAULT_SOURCES_DIR]
    assert load_source("demo").name == "our own demo"  # an earlier folder wins
    assert load_source("teamdemo").start_pages == [LEAF]
    assert load_source("classic").id == "classic"  # the project's own, still there
    found = {source_id: (path, hidden) for source_id, path, hidden in source_files()}
    assert found["demo"] == (first / "demo.yaml", [DEFAULT_SOURCES_DIR / "demo.yaml"])
    assert found["teamdemo"] == (second / "teamdemo.yaml", [])
    with pytest.raises(SourceConfigError, match=r"known sources: \[.*'classic'.*'teamdemo'"):
        load_source("nosuch")


def test_a_source_outside_the_repo_crawls_and_replays_its_cases(
    mongo_server: EmbeddedMongo, tmp_path: Path
) -> None:
    team = tmp_path / "team"
    _team_source(team / "sources")
    cases = team / "cases"
    name = f"elsewhere_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
        "DARKARCHIVE_SOURCES_DIR": f"{team / 'sources'}{os.pathsep}{tmp_path / 'absent'}",
    }
    with FixtureServer(market="demo", day=1) as server:
        run_cli("crawl", "teamdemo", "--mirror", server.url, env=env)
        client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
        try:
            db = client[name]
            run = db.runs.find_one({"source": "teamdemo"})
            assert run is not None and run["status"] == "complete", run
            listing = db.listing_versions.find_one({"source": "teamdemo"})
            assert listing is not None
        finally:
            client.drop_database(name)
            client.close()
        for kind, path, case in (
            ("listing", f"/listing/{listing['key']}", "first-listing"),
            ("index", LEAF, "the-category"),
        ):
            run_cli(
                "fixtures", "save-page", "teamdemo", server.url + path,
                "--kind", kind, "--case", case, "--root", str(cases), env=env,
            )  # fmt: skip

    replayed = run_cli("fixtures", "test", "teamdemo", "--root", str(cases), env=env)
    assert replayed.stdout.splitlines() == [
        "ok   index/the-category",
        "ok   listing/first-listing",
        f"teamdemo: 2 case(s) under {cases / 'teamdemo'}, 0 failed",
    ]
    # the project's own sources and cases, on the same search path
    assert "0 failed" in run_cli("fixtures", "test", "demo", env=env).stdout

    output = cases / "teamdemo" / "listing" / "first-listing" / "output.json"
    expected = json.loads(output.read_text(encoding="utf-8"))
    title = expected["records"][0]["content"]["title"]
    expected["records"][0]["content"]["title"] = "A title the page does not show"
    output.write_text(json.dumps(expected), encoding="utf-8")
    failed = run_cli("fixtures", "test", "teamdemo", "--root", str(cases), env=env, code=1)
    lines = failed.stdout.splitlines()
    assert "FAIL listing/first-listing: 1 difference(s), expected -> read" in lines
    assert (
        f'  records[0].content.title: "A title the page does not show" -> {json.dumps(title)}'
        in lines
    )
    assert lines[-1] == f"teamdemo: 2 case(s) under {cases / 'teamdemo'}, 1 failed"


def test_no_cases_is_an_error_that_says_where_it_looked(tmp_path: Path) -> None:
    env = {**os.environ, "DARKARCHIVE_SOURCES_DIR": str(tmp_path)}
    result = run_cli("fixtures", "test", "demo", "--root", str(tmp_path), env=env, code=2)
    assert f"no saved cases under {tmp_path / 'demo'}" in result.stderr
