"""Benchmark: a full crawl of the demo fixture market, day 1 then day 2, into a fresh archive.

Prints pages/s of each crawl (wall time of the `darkarchive crawl` process, start-up
included, and the pages it recorded) and the archive's size after each day: documents per
collection and bytes on disk of the embedded server's data folder.

    .venv/bin/python bench/bench_crawl.py [--market demo|demo-large] [--days 1 2] [--tor]

With `--tor` the same market is also served as an onion service on a private Tor network
on loopback and each day is crawled twice, directly (source demo) and through Tor (source
demo-onion), into separate archives, so the two speeds are measured side by side.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import pymongo

from fixtures.onion import OnionMarket, onion_market
from fixtures.server import FixtureServer
from pipelines.store.embedded import EmbeddedMongo

COLLECTIONS = (
    "runs",
    "pages",
    "bodies",
    "listings",
    "listing_versions",
    "vendors",
    "vendor_versions",
    "observations",
    "feedback",
    "run_events",
)


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def crawl(
    client: pymongo.MongoClient, env: dict[str, str], db: str, args: list[str], data: Path
) -> None:
    """One `darkarchive crawl` process into database `db`; print its speed and the archive."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", *args],
        check=True, env={**env, "DARKARCHIVE_DB": db}, capture_output=True, timeout=3600,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    run = client[db].runs.find_one(sort=[("seq", -1)]) or {}
    pages = run.get("counts", {}).get("pages", 0)
    docs = {c: client[db][c].count_documents({}) for c in COLLECTIONS}
    body_bytes = sum(len(b["data"]) for b in client[db].bodies.find({}, {"data": 1}))
    print(f"  {args[0]}: run {run.get('_id')} {run.get('status')}")
    print(f"    {pages} pages in {elapsed:.1f} s = {pages / elapsed:.1f} pages/s")
    print(f"    documents: {docs}")
    print(f"    compressed page bodies: {body_bytes / 1e6:.2f} MB")
    print(f"    data folder on disk: {folder_bytes(data) / 1e6:.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--market", default="demo", help="demo (340 listings) or demo-large (5,000)"
    )
    parser.add_argument("--tor", action="store_true", help="also crawl it as an onion")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        data = Path(tmp) / "mongo"
        server = stack.enter_context(EmbeddedMongo(data))
        env = {**os.environ, "MONGODB_URI": server.uri, "DARKARCHIVE_HOME": tmp}
        onion: OnionMarket | None = None
        if args.tor:
            started = time.monotonic()
            onion = stack.enter_context(onion_market(args.market, args.days[0], Path(tmp) / "tor"))
            print(f"private Tor network and onion ready in {time.monotonic() - started:.1f} s")
            market = onion.server
            config = Path(tmp) / "tor.yaml"
            config.write_text(onion.tor_config(), encoding="utf-8")
            env["DARKARCHIVE_TOR_CONFIG"] = str(config)
        else:
            market = stack.enter_context(FixtureServer(market=args.market))
        client: pymongo.MongoClient = stack.enter_context(
            pymongo.MongoClient(server.uri, tz_aware=True)
        )
        for day in args.days:
            market.set_day(day)
            print(f"day {day}:")
            crawl(client, env, "darkarchive", ["demo", "--mirror", market.url], data)
            if onion is not None:
                crawl(client, env, "over_tor", ["demo-onion", "--mirror", onion.url], data)


if __name__ == "__main__":
    main()
