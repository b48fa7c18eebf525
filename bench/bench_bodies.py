"""Benchmark: bytes of page bodies stored whole against stored as deltas, and read time.

Crawls a fixture market on each day into a fresh embedded server, once per value of
`DARKARCHIVE_BODY_FULL_EVERY` (1 = every body stored whole, as before deltas), and prints
after each day the bodies collection (documents whole / delta, compressed bytes), the raw
HTML it holds, and the data folder on disk. Then it stores one listing page as it looked on
`--chain` successive days (one chain of deltas at its worst depth) and times reading its
oldest version (every link decoded and SHA-checked) and its newest, and reading one day's
bodies one `find_one` at a time against `load_bodies` in batches.

    .venv/bin/python bench/bench_bodies.py [--market demo|demo-large] [--days 1 2]
        [--full-every 1 16] [--chain 16] [--secantus-toml FILE] [--no-crawl | --no-reads]

`--secantus-toml` puts that file in the data folder as the server's configuration (try
`[oplog]` `retention_seconds`/`max_entries`, or `[server]` `standalone = true`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pymongo

from fixtures.server import FixtureServer
from pipelines.store.bodies import DELTA, load_bodies, load_body
from pipelines.store.model import PageRecord, RunRef
from pipelines.store.pages import PageWriter


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def largest_files(path: Path, n: int = 3) -> str:
    files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)
    return ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in files[:n])


def body_stats(db: pymongo.database.Database) -> dict[str, float]:
    docs = deltas = stored = raw = 0
    for doc in db.bodies.find({}, {"compression": 1, "stored_size": 1, "size": 1}):
        docs += 1
        deltas += doc.get("compression") == DELTA
        stored += doc["stored_size"]
        raw += doc["size"]
    bson = db.command("collStats", "bodies").get("size", 0)  # documents as BSON, with keys
    return {"docs": docs, "deltas": deltas, "stored": stored, "raw": raw, "bson": bson}


def crawl_days(
    market_name: str, days: list[int], full_every: int, toml: Path | None
) -> list[dict[str, float]]:
    """Crawl `days` into a fresh server; the archive's body figures after each day."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        from pipelines.store.embedded import EmbeddedMongo

        data = Path(tmp) / "mongo"
        if toml is not None:
            data.mkdir(mode=0o700)
            shutil.copy(toml, data / "secantusd.toml")
        server = stack.enter_context(EmbeddedMongo(data))
        env = {
            **os.environ,
            "MONGODB_URI": server.uri,
            "DARKARCHIVE_HOME": tmp,
            "DARKARCHIVE_DB": "darkarchive",
            "DARKARCHIVE_BODY_FULL_EVERY": str(full_every),
        }
        market = stack.enter_context(FixtureServer(market=market_name))
        client: pymongo.MongoClient = stack.enter_context(
            pymongo.MongoClient(server.uri, tz_aware=True)
        )
        for day in days:
            market.set_day(day)
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
                 "--mirror", market.url],
                check=True, env=env, capture_output=True, timeout=3600,
            )  # fmt: skip
            elapsed = time.monotonic() - started
            row = body_stats(client.darkarchive)
            row.update(day=day, seconds=elapsed, folder=folder_bytes(data))
            rows.append(row)
            print(
                f"  N={full_every} day {day}: crawl {elapsed:.1f} s; bodies {row['docs']} "
                f"({row['deltas']} deltas), {row['stored'] / 1e6:.2f} MB stored for "
                f"{row['raw'] / 1e6:.1f} MB raw ({row['raw'] / row['stored']:.1f}x), "
                f"collection {row['bson'] / 1e6:.2f} MB; data "
                f"folder {row['folder'] / 1e6:.1f} MB ({largest_files(data)})",
                flush=True,
            )
    return rows


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms"


def read_times(market_name: str, chain: int, repeats: int = 200) -> None:
    """One listing page on `chain` days as one chain; time reading its ends."""
    from pipelines.store.embedded import EmbeddedMongo

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        server = stack.enter_context(EmbeddedMongo(Path(tmp) / "mongo"))
        market = stack.enter_context(FixtureServer(market=market_name))
        client: pymongo.MongoClient = stack.enter_context(
            pymongo.MongoClient(server.uri, tz_aware=True)
        )
        db = client.bench_bodies
        writer = PageWriter(db, full_every=chain)
        market.set_day(chain)
        last = set(market.world.listings)
        market.set_day(1)  # a listing on sale on the first and the last day
        url = f"{market.url}/listing/{sorted(last & set(market.world.listings))[0]}"
        shas: list[str] = []
        for day in range(1, chain + 1):
            market.set_day(day)
            with urllib.request.urlopen(url, timeout=30) as answer:
                body = answer.read()
            run = RunRef(run_id=f"bench:{day:06d}", source="bench", seq=day)
            sha = writer.add(run, PageRecord(url, 200, _now(), "listing", "listing", body, {}))
            assert sha is not None
            shas.append(sha)
            writer.flush()
        sizes = [d["stored_size"] for d in db.bodies.find({"_id": {"$in": shas}})]
        print(
            f"  one listing page ({len(body) / 1e3:.1f} kB) on {chain} days: "
            f"{sum(sizes) / 1e3:.1f} kB stored"
        )
        for name, sha in (("oldest (worst depth)", shas[0]), ("newest (whole)", shas[-1])):
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                load_body(db, sha)
                samples.append(time.perf_counter() - started)
            print(f"  read {name}: {percentiles(samples)} over {repeats} reads")


def batch_reads(market_name: str) -> None:
    """A day's bodies: one `load_body` per page against `load_bodies` 200 at a time."""
    from pipelines.store.embedded import EmbeddedMongo

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        server = stack.enter_context(EmbeddedMongo(Path(tmp) / "mongo"))
        market = stack.enter_context(FixtureServer(market=market_name))
        client: pymongo.MongoClient = stack.enter_context(
            pymongo.MongoClient(server.uri, tz_aware=True)
        )
        db = client.bench_bodies
        writer = PageWriter(db)
        run = RunRef(run_id="bench:000001", source="bench", seq=1)
        shas: list[str] = []
        for key in sorted(market.world.listings)[:400]:
            url = f"{market.url}/listing/{key}"
            with urllib.request.urlopen(url, timeout=30) as answer:
                body = answer.read()
            page = PageRecord(url, 200, _now(), "listing", "listing", body, {})
            sha = writer.add(run, page)
            assert sha is not None
            shas.append(sha)
        writer.flush()
        started = time.perf_counter()
        for sha in shas:
            load_body(db, sha)
        one = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(0, len(shas), 200):
            load_bodies(db, shas[i : i + 200])
        batched = time.perf_counter() - started
        print(
            f"  {len(shas)} bodies: one by one {len(shas) / one:.0f}/s, "
            f"in batches of 200 {len(shas) / batched:.0f}/s"
        )


def _now() -> datetime:
    return datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--market", default="demo", help="demo (401 pages) or demo-large")
    parser.add_argument("--days", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--full-every", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--chain", type=int, default=16, help="versions in the read chain")
    parser.add_argument("--secantus-toml", type=Path, default=None)
    parser.add_argument("--no-crawl", action="store_true", help="only the read times")
    parser.add_argument("--no-reads", action="store_true", help="only the crawls")
    args = parser.parse_args()
    if not args.no_crawl:
        for full_every in args.full_every:
            print(f"{args.market}, full copy every {full_every} version(s):", flush=True)
            crawl_days(args.market, args.days, full_every, args.secantus_toml)
    if not args.no_reads:
        print("reads:", flush=True)
        read_times(args.market, args.chain)
        batch_reads(args.market)


if __name__ == "__main__":
    main()
