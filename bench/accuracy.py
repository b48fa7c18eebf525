"""Precision/recall and field-level accuracy of a crawl of a fixture market vs its truth.

    .venv/bin/python bench/accuracy.py classic [--days 1 2]

Each day is crawled by a separate `darkarchive crawl` process against the fixture server on
loopback, into a fresh embedded secantusdb, then exported and scored
(fixtures/market/accuracy.py, the same scoring tests/test_market_classic.py asserts).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fixtures.market import MARKETS
from fixtures.market.accuracy import crawl_days, score
from fixtures.server import FixtureServer
from pipelines.store.embedded import EmbeddedMongo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("market", choices=MARKETS)
    parser.add_argument("--days", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    perfect = True
    with (
        tempfile.TemporaryDirectory(prefix="accuracy-") as tmp,
        EmbeddedMongo(Path(tmp) / "mongo") as mongo,
    ):
        env = {
            **os.environ,
            "MONGODB_URI": mongo.uri,
            "DARKARCHIVE_DB": f"accuracy_{uuid.uuid4().hex[:8]}",
            "DARKARCHIVE_HOME": str(Path(tmp) / "home"),
        }
        with FixtureServer(market=args.market, day=args.days[0]) as server:
            for day in args.days:
                started = time.monotonic()
                (export,) = crawl_days(args.market, [day], server, env)
                seconds = time.monotonic() - started
                result = score(args.market, day, export)
                pages = export["run"]["counts"].get("pages", 0)
                print(result.report(f"{args.market} day {day} ({pages} pages, {seconds:.1f} s)"))
                perfect &= result.perfect
    return 0 if perfect else 1


if __name__ == "__main__":
    sys.exit(main())
