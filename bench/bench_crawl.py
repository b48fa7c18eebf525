"""Benchmark: a full crawl of the demo fixture market, day 1 then day 2, into a fresh archive.

Prints pages/s of each crawl (wall time of the `darkarchive crawl` process, start-up
included, and the pages it recorded) and the archive's size after each day: documents per
collection and bytes on disk of the embedded server's data folder.

    .venv/bin/python bench/bench_crawl.py [--market demo|demo-large] [--days 1 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymongo

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--market", default="demo", help="demo (340 listings) or demo-large (5,000)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mongo"
        with EmbeddedMongo(data) as server, FixtureServer(market=args.market) as market:
            client: pymongo.MongoClient = pymongo.MongoClient(server.uri, tz_aware=True)
            env = {**os.environ, "MONGODB_URI": server.uri, "DARKARCHIVE_HOME": tmp}
            for day in args.days:
                market.set_day(day)
                started = time.monotonic()
                subprocess.run(
                    [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl",
                     "demo", "--mirror", market.url],
                    check=True, env=env, capture_output=True, timeout=1800,
                )  # fmt: skip
                elapsed = time.monotonic() - started
                run = client.darkarchive.runs.find_one(sort=[("seq", -1)]) or {}
                pages = run.get("counts", {}).get("pages", 0)
                docs = {c: client.darkarchive[c].count_documents({}) for c in COLLECTIONS}
                body_bytes = sum(
                    len(b["data"]) for b in client.darkarchive.bodies.find({}, {"data": 1})
                )
                print(f"day {day}: run {run.get('_id')} {run.get('status')}")
                print(f"  {pages} pages in {elapsed:.1f} s = {pages / elapsed:.1f} pages/s")
                print(f"  documents: {docs}")
                print(f"  compressed page bodies: {body_bytes / 1e6:.2f} MB")
                print(f"  data folder on disk: {folder_bytes(data) / 1e6:.2f} MB")
            client.close()


if __name__ == "__main__":
    main()
