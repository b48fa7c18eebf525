"""Reparse as new versions: a deliberate parser change, stored beside the crawl's reading.

The demo market is crawled on days 1, 2 and 3; then `darkarchive reparse --write` runs
runs 1 and 2 again with a parser that upper-cases listing titles (a source file in a
folder of its own, as a team fixing a selector would). What must hold: rereads exist for
exactly the title field; queries answer with the new reading by default and with the
crawl's when asked; the crawl's export of run 1 is byte-for-byte what it was.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
from subprocesses import run_cli

from crawler.sources.loader import DEFAULT_SOURCES_DIR
from fixtures.market.accuracy import crawl_days
from fixtures.server import FixtureServer
from pipelines.query import QueryError, as_of, changes, price_series, sales
from pipelines.store.rereads import rereads_collection

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database

    from pipelines.store.embedded import EmbeddedMongo

SHOUTING = (
    '      title: {css: "h1.listing-title::text", processors: [strip, upper], required: true}'
)


@pytest.fixture(scope="module")
def reparsed(
    mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Three crawled days, run 1's export before any reparse, then runs 1–2 reparsed."""
    name = f"reparse_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp_path_factory.mktemp("home")),
    }
    with FixtureServer(market="demo", day=1) as server:
        crawl_days("demo", [1, 2, 3], server, env)
    before = run_cli("export", "demo", "--run", "1", env=env).stdout

    fixed = tmp_path_factory.mktemp("sources")
    text = (DEFAULT_SOURCES_DIR / "demo.yaml").read_text()
    original = next(line for line in text.splitlines() if "h1.listing-title" in line)
    shouting = original.replace("processors: [strip]", "processors: [strip, upper]")
    assert shouting != original
    (fixed / "demo.yaml").write_text(text.replace(original, shouting))
    fixed_env = {**env, "DARKARCHIVE_SOURCES_DIR": str(fixed)}
    written = run_cli("reparse", "demo", "--runs", "1..2", "--write", env=fixed_env)
    again = run_cli("reparse", "demo", "--runs", "1..2", "--write", env=fixed_env)

    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    db = client[name]
    runs = {r["seq"]: r for r in db["runs"].find({"source": "demo"})}
    yield {
        "env": env,
        "db": db,
        "runs": runs,
        "before": before,
        "written": written.stderr,
        "again": again.stderr,
        # The reparse's own parser version: the fixed blueprint with today's code.
        "parser": _only({r["parser"] for r in db["reparses"].find({"source": "demo"})}),
    }
    client.drop_database(name)
    client.close()


def _only(values: set[str]) -> str:
    (value,) = values
    return value


def _titles(result: dict[str, Any]) -> dict[str, str]:
    return {e["key"]: e["content"]["title"] for e in result["entities"]}


def test_rereads_hold_exactly_the_changed_field(reparsed: dict[str, Any]) -> None:
    db: Database[Any] = reparsed["db"]
    parser = reparsed["parser"]
    assert parser != reparsed["runs"][1]["parser_version"]
    docs = list(db[rereads_collection("listing")].find({"source": "demo", "parser": parser}))
    assert docs and {tuple(d["fields"]) for d in docs} == {("title",)}
    assert not list(db[rereads_collection("vendor")].find({"source": "demo"}))
    # One interval per distinct reading: a listing unchanged from day 1 to day 2 has one
    # document covering both runs, not one per run.
    crawl_1 = _titles(as_of(db, "demo", run="1", parser="crawl"))
    crawl_2 = _titles(as_of(db, "demo", run="2", parser="crawl"))
    spans = {(d["key"], d["valid_from_seq"], d["valid_to_seq"]) for d in docs}
    unchanged = [
        e["key"]
        for e in as_of(db, "demo", run="2", parser="crawl")["entities"]
        if e["version"] == 1 and e["key"] in crawl_1
    ]
    assert unchanged and all((key, 1, 3) in spans for key in unchanged)
    assert len(docs) == len(crawl_1) + len(crawl_2) - len(unchanged)
    assert f"stored under parser {parser}: {len(crawl_1)} new, 0 extended" in reparsed["written"]
    assert ": 0 new, 0 extended" in reparsed["again"], reparsed["again"]


def test_queries_read_the_newest_parser_and_the_old_one_on_request(
    reparsed: dict[str, Any],
) -> None:
    db: Database[Any] = reparsed["db"]
    parser = reparsed["parser"]
    for run in ("1", "2"):
        crawl = as_of(db, "demo", run=run, parser="crawl")
        newest = as_of(db, "demo", run=run)
        named = as_of(db, "demo", run=run, parser=parser)
        assert newest["run"]["parser"] == parser
        assert crawl["run"]["parser"] == reparsed["runs"][int(run)]["parser_version"]
        assert _titles(newest) == {k: t.upper() for k, t in _titles(crawl).items()}
        assert _titles(named) == _titles(newest)
        for old, new in zip(crawl["entities"], newest["entities"], strict=True):
            rest = {k: v for k, v in new["content"].items() if k != "title"}
            assert rest == {k: v for k, v in old["content"].items() if k != "title"}
            assert new["provenance"]["parser_version"] == parser
    third = as_of(db, "demo", run="3")  # never reparsed: the crawl's reading
    assert third["run"]["parser"] == reparsed["runs"][3]["parser_version"]
    assert any(t != t.upper() for t in _titles(third).values())
    with pytest.raises(QueryError, match="was not read by parser"):
        as_of(db, "demo", run="3", parser=parser)


def test_changes_compare_two_runs_under_one_reading(reparsed: dict[str, Any]) -> None:
    db: Database[Any] = reparsed["db"]
    crawl = changes(db, "demo", "1", "2", parser="crawl")
    newest = changes(db, "demo", "1", "2")
    assert newest["from"]["parser"] == newest["to"]["parser"] == reparsed["parser"]
    for kind in ("new", "changed", "delisted", "relisted"):
        assert [e["key"] for e in newest[kind]] == [e["key"] for e in crawl[kind]], kind
    assert [c["fields"] for c in newest["changed"]] == [c["fields"] for c in crawl["changed"]]
    # Run 3 was not reparsed: runs 2 and 3 share only the crawl's reading, so upper-cased
    # titles never show up as changes in the market.
    mixed = changes(db, "demo", "2", "3")
    assert mixed["from"]["parser"] == reparsed["runs"][2]["parser_version"]
    assert mixed == changes(db, "demo", "2", "3", parser="crawl")


def test_price_series_points_name_their_reading(reparsed: dict[str, Any]) -> None:
    db: Database[Any] = reparsed["db"]
    key = as_of(db, "demo", run="1")["entities"][0]["key"]
    series = price_series(db, "demo", key)["series"]
    by_seq = {p["seq"]: p["parser"] for p in series}
    assert by_seq[1] == by_seq[2] == reparsed["parser"]
    assert (
        by_seq.get(3, reparsed["runs"][3]["parser_version"])
        == reparsed["runs"][3]["parser_version"]
    )
    only_new = price_series(db, "demo", key, parser=reparsed["parser"])["series"]
    assert sorted(p["seq"] for p in only_new) == sorted(s for s in by_seq if s in (1, 2))


def test_the_crawls_export_stays_byte_identical(reparsed: dict[str, Any]) -> None:
    env = reparsed["env"]
    crawl = run_cli("export", "demo", "--run", "1", "--parser", "crawl", env=env).stdout
    assert crawl == reparsed["before"]
    newest = run_cli("export", "demo", "--run", "1", env=env).stdout
    header = json.loads(newest.splitlines()[0])
    assert header["read_by"] == reparsed["parser"]
    titles = [json.loads(line).get("title") for line in newest.splitlines()[1:]]
    assert titles and all(t == t.upper() for t in titles if t)
    shown = run_cli("asof", "demo", "--run", "1", "--format", "json", env=env).stdout
    assert json.loads(shown)["run"]["parser"] == reparsed["parser"]
    refused = run_cli("asof", "demo", "--run", "3", "--parser", "nope", env=env, code=1)
    assert "was not read by parser nope" in refused.stderr


def test_sales_price_each_sale_as_its_run_was_read(reparsed: dict[str, Any]) -> None:
    """Sales take the listing as the pricing run was read: the reparse's titles by
    default, the crawl's on request, and the same money (the fix changed no price)."""
    db: Database[Any] = reparsed["db"]
    newest = sales(db, "demo", by="listing")
    crawl = sales(db, "demo", by="listing", parser="crawl")
    assert newest["totals"] == crawl["totals"] and newest["totals"]["feedback"] > 0
    titles = {r["listing"]: r["title"] for r in crawl["rows"]}
    read = {r["listing"]: r["title"] for r in newest["rows"]}
    assert read.keys() == titles.keys()
    assert any(read[k] != titles[k] for k in read)
    assert all(read[k] in (titles[k], titles[k].upper()) for k in read)
    named = sales(db, "demo", by="listing", parser=reparsed["parser"])
    assert named["rows"] == newest["rows"]  # every sale was priced by run 1 or 2
    with pytest.raises(QueryError, match="was not read by parser nope"):
        sales(db, "demo", parser="nope")
