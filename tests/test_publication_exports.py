"""Exports for publication, round-tripped: checksums, Parquet through pyarrow and DuckDB,
CSV, panels, pseudonyms, and WARC files that warcio checks and replays."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow.parquet as pq
import pytest
from subprocesses import run_cli
from warcio.archiveiterator import ArchiveIterator

from fixtures.market.accuracy import crawl_days
from fixtures.server import FixtureServer
from pipelines.exports import verify

if TYPE_CHECKING:
    from pipelines.store.embedded import EmbeddedMongo


@pytest.fixture(scope="module")
def archive_env(
    mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The demo market crawled on days 1 and 2, and each run's stable JSONL export."""
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"publish_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path_factory.mktemp("home")),
    }
    with FixtureServer(market="demo", day=1) as server:
        return env, crawl_days("demo", [1, 2], server, env)


def _export(env: dict[str, str], out: Path, *args: str) -> Path:
    run_cli("export", "demo", "--output", str(out), *args, env=env)
    return out


def test_parquet_round_trips_through_pyarrow_and_duckdb_and_the_checksums_verify(
    archive_env: tuple[dict[str, str], list[dict[str, Any]]], tmp_path: Path
) -> None:
    env, exports = archive_env
    out = _export(env, tmp_path / "p", "--run", "demo:000002", "--format", "parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["run"] for r in manifest["runs"]] == ["demo:000002"]
    assert manifest["runs"][0]["complete"] is True
    assert verify(out) == []
    truth = exports[1]["listing"]
    listings = pq.read_table(out / "listings.parquet").to_pylist()
    assert manifest["files"]["listings.parquet"]["rows"] == len(listings) == len(truth)
    for row in listings:
        line = truth[row["key"]]
        assert row["price_amount"] == Decimal(line["price"]["amount"])
        assert row["usd_amount"] == Decimal(line["usd"]["amount"])
        assert row["provenance_page_sha256"] == line["provenance"]["page_sha256"]
    total = sum(Decimal(line["usd"]["amount"]) for line in truth.values())
    query = f"SELECT count(*), sum(usd_amount) FROM '{out / 'listings.parquet'}'"
    ((count, usd),) = duckdb.sql(query).fetchall()
    assert (count, usd) == (len(truth), total)
    vendors = pq.read_table(out / "vendors.parquet").to_pylist()
    assert {v["key"] for v in vendors} == set(exports[1]["vendor"])
    assert all(Decimal(0) <= v["rating_value"] <= 1 for v in vendors)
    feedback = pq.read_table(out / "feedback.parquet").to_pylist()
    assert len(feedback) == len(exports[1]["feedback"])
    priced = [f for f in feedback if f["vendor"] and f["price_amount"] is not None]
    assert len(priced) == len(feedback), "each review carries its listing's vendor and price"

    (out / "listings.parquet").write_bytes((out / "listings.parquet").read_bytes() + b"x")
    assert verify(out) == ["listings.parquet"]


def test_csv_and_jsonl_tables_carry_the_same_rows(
    archive_env: tuple[dict[str, str], list[dict[str, Any]]], tmp_path: Path
) -> None:
    env, exports = archive_env
    as_csv = _export(env, tmp_path / "c", "--run", "demo:000001", "--format", "csv")
    as_jsonl = _export(env, tmp_path / "j", "--run", "demo:000001", "--format", "jsonl")
    with (as_csv / "listings.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    lines = [json.loads(x) for x in (as_jsonl / "listings.jsonl").read_text().splitlines()]
    assert [r["key"] for r in rows] == [x["key"] for x in lines] == sorted(exports[0]["listing"])
    assert [r["price_amount"] for r in rows] == [x["price_amount"] for x in lines]
    again = _export(env, tmp_path / "c2", "--run", "demo:000001", "--format", "csv")
    for name in ("listings.csv", "vendors.csv", "feedback.csv", "runs.csv", "pages.csv"):
        assert (again / name).read_bytes() == (as_csv / name).read_bytes(), name


def test_a_panel_has_every_run_of_the_range(
    archive_env: tuple[dict[str, str], list[dict[str, Any]]], tmp_path: Path
) -> None:
    env, exports = archive_env
    out = _export(env, tmp_path / "panel", "--runs", "1..2", "--format", "parquet")
    runs = pq.read_table(out / "runs.parquet").to_pylist()
    assert [(r["run"], r["status"]) for r in runs] == [
        ("demo:000001", "complete"),
        ("demo:000002", "complete"),
    ]
    listings = pq.read_table(out / "listings.parquet", columns=["run", "key"]).to_pylist()
    assert len(listings) == len(exports[0]["listing"]) + len(exports[1]["listing"])


def test_pseudonyms_are_stable_per_key_and_no_handle_or_free_text_leaks(
    archive_env: tuple[dict[str, str], list[dict[str, Any]]], tmp_path: Path
) -> None:
    env, exports = archive_env
    args = ("--run", "demo:000001", "--format", "csv", "--no-text")
    one = _export(env, tmp_path / "a", *args, "--pseudonymise", "k1")
    same = _export(env, tmp_path / "b", *args, "--pseudonymise", "k1")
    other = _export(env, tmp_path / "c", *args, "--pseudonymise", "k2")
    assert (one / "vendors.csv").read_bytes() == (same / "vendors.csv").read_bytes()
    assert (one / "vendors.csv").read_bytes() != (other / "vendors.csv").read_bytes()
    everything = b"".join(p.read_bytes() for p in one.iterdir() if p.suffix == ".csv")
    for key, vendor in exports[0]["vendor"].items():
        assert key.encode() not in everything and vendor["name"].encode() not in everything
    buyers = {f["buyer"] for f in exports[0]["feedback"] if len(f["buyer"]) > 4}
    assert not any(b.encode() in everything for b in buyers)
    with (one / "listings.csv").open(encoding="utf-8") as handle:
        listings = list(csv.DictReader(handle))
    assert all(row["description"] == "" for row in listings)
    with (one / "vendors.csv").open(encoding="utf-8") as handle:
        pseudonyms = {row["key"] for row in csv.DictReader(handle)}
    assert {row["vendor"] for row in listings} <= pseudonyms, "pseudonyms still join"
    manifest = json.loads((one / "manifest.json").read_text())
    assert manifest["query"]["pseudonymised"] is True and "k1" not in json.dumps(manifest)


def test_warc_files_pass_warcio_check_and_replay_a_page(
    archive_env: tuple[dict[str, str], list[dict[str, Any]]], tmp_path: Path
) -> None:
    env, exports = archive_env
    out = _export(env, tmp_path / "w", "--run", "demo:000001", "--warc")
    warc = out / "pages-000001.warc.gz"
    check = subprocess.run(
        [str(Path(sys.executable).parent / "warcio"), "check", "-v", str(warc)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    listing = next(iter(exports[0]["listing"].values()))
    with warc.open("rb") as handle:
        records = {
            r.rec_headers.get_header("WARC-Target-URI"): (r.http_headers.get_statuscode(),
                                                          r.content_stream().read())
            for r in ArchiveIterator(handle)
            if r.rec_type == "response"
        }  # fmt: skip
    assert (
        len(records)
        == json.loads((out / "manifest.json").read_text())["files"][warc.name]["records"]
    )
    status, body = records[listing["provenance"]["url"]]
    assert status == "200"
    assert hashlib.sha256(body).hexdigest() == listing["provenance"]["page_sha256"]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_filtered_panel_keeps_one_slice_and_what_hangs_off_it(
    archive_env: tuple[dict[str, str], list[dict[str, Any]]], tmp_path: Path
) -> None:
    """`--category` and `--vendor` filter listings as a search does; vendors and feedback
    follow the kept listings; the manifest records the filter with the query."""
    env, _ = archive_env
    whole = _export(env, tmp_path / "all", "--runs", "1..2")
    listings = _jsonl(whole / "listings.jsonl")
    category = listings[0]["category"].split(" > ")[-1]
    vendor = listings[0]["vendor"]
    for args, keeps in (
        (("--category", category.upper()), lambda r: category in r["category"].split(" > ")),
        (("--vendor", vendor), lambda r: r["vendor"] == vendor),
    ):
        out = _export(env, tmp_path / args[0].strip("-"), "--runs", "1..2", *args)
        kept = _jsonl(out / "listings.jsonl")
        assert kept == [r for r in listings if keeps(r)] and 0 < len(kept) < len(listings)
        named = {(r["run"], r["vendor"]) for r in kept}
        vendors = _jsonl(out / "vendors.jsonl")
        assert vendors == [
            v for v in _jsonl(whole / "vendors.jsonl") if (v["run"], v["key"]) in named
        ]
        keys = {r["key"] for r in kept}
        feedback = _jsonl(out / "feedback.jsonl")
        assert feedback and feedback == [
            f for f in _jsonl(whole / "feedback.jsonl") if f["listing_key"] in keys
        ]
        assert (out / "pages.jsonl").read_bytes() == (whole / "pages.jsonl").read_bytes()
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["query"]["filter"] == {args[0][2:]: args[1]}
        assert verify(out) == []
