"""How much of the reactor thread's wall time a crawl spends inside pymongo and bson calls.

Issue 12 found every database write made on Twisted's reactor thread (21 % of wall in round
trips); the writer thread moved them off it. This samples one crawl of a fixture market
with py-spy (all threads, idle ones included, so a wait on the database counts) and prints
the share of the reactor loop's samples that are inside pymongo or bson, and where.

    .venv/bin/pip install py-spy   # not a project dependency
    .venv/bin/python bench/reactor_share.py [--market demo] [-s ARCHIVE_WRITER_THREAD=False]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fixtures.server import FixtureServer
from pipelines.store.embedded import EmbeddedMongo

ROOT = Path(__file__).resolve().parent.parent
LOOP = "AsyncioSelectorReactor.run"


def share(raw: Path) -> tuple[int, float, float, collections.Counter[str]]:
    """Reactor-loop samples; shares in pymongo/bson outside and inside `open_spider`."""
    loop = in_store = opening = 0
    where: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if "MainThread" not in frames[0] or LOOP not in stack:
            continue
        loop += int(count)
        if "pymongo" not in stack and "bson" not in stack:
            continue
        if "open_spider" in stack:
            opening += int(count)
            continue
        in_store += int(count)
        ours = [f for f in frames if "pipelines/" in f or "crawler/" in f]
        where[ours[-1].split(" (")[0] if ours else "?"] += int(count)
    return loop, in_store / max(loop, 1), opening / max(loop, 1), where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--market", default="demo")
    parser.add_argument("-s", dest="settings", action="append", default=[], help="NAME=VALUE")
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedMongo(Path(tmp) / "mongo") as server,
        FixtureServer(market=args.market, noise=True) as market,
    ):
        env = {**os.environ, "MONGODB_URI": server.uri, "DARKARCHIVE_HOME": tmp}
        raw = Path(tmp) / "samples.txt"
        settings = [arg for setting in args.settings for arg in ("-s", setting)]
        subprocess.run(
            [spy, "record", "--threads", "--idle", "--rate", "200", "--format", "raw",
             "--nonblocking", "-o", str(raw), "--", sys.executable, "-m", "crawler.cli",
             "--log-level", "WARNING", "crawl", "demo", "--mirror", market.url, *settings],
            env=env, cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        loop, in_store, opening, where = share(raw)
    print(
        f"reactor loop: {loop} samples; in pymongo/bson {in_store:.1%} (open_spider {opening:.1%})"
    )
    for name, count in where.most_common(5):
        print(f"  {count / max(loop, 1):6.1%}  {name}")


if __name__ == "__main__":
    main()
