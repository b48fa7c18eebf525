"""Benchmark: peak memory of a crawl of the demo market with every hostile page mixed in.

The fixture server runs with `Hostility(hostile_pages=True)`: its home page links an
80,000-row tier table, a 100,000-deep description, an undecodable page, absurd prices, a
gzip bomb (512 MiB of zeros), an endless stream, redirect loops and off-site redirects and
catastrophic-backtracking bait, among the market's own 340 listings. One `darkarchive
crawl` process into a fresh embedded secantusdb; its peak RSS is read from the kernel when
it exits (`wait4`), so nothing samples or misses a spike. Prints the run's outcome, what
was recorded for each hostile URL, and whether any listing of the market was lost.

    .venv/bin/python bench/bench_hostile.py [--json FILE]

Target (issue 10): the run ends `partial`, no listing lost, peak RSS under 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pymongo

from fixtures.hostile import HOSTILE_LINKED, HOSTILE_LINKS_PATH, Hostility
from fixtures.market import truth
from fixtures.server import FixtureServer
from pipelines.store.embedded import EmbeddedMongo

TARGET_RSS_MB = 1024


def crawl_peak_rss(command: list[str], env: dict[str, str]) -> tuple[int, float, int]:
    """Run `command`; its exit code, wall seconds and peak RSS in MB (from `wait4`)."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, time.monotonic() - started, usage.ru_maxrss // 1024


def recorded(db: Any, run: dict[str, Any], url: str) -> str:
    """What the archive says about one hostile URL: its page's state, error and events."""
    page = db.pages.find_one({"run": run["_id"], "url": url}, {"state": 1, "error": 1})
    events = db.run_events.find({"run": run["_id"]}, {"url": 1, "reason": 1})
    reasons = [e["reason"] for e in events if e.get("url") == url or url in e["reason"]]
    if page is not None and page.get("error"):
        reasons.insert(0, page["error"])
    state = f"page {page['state']}" if page is not None else "no page"
    shown = " | ".join(dict.fromkeys(r[:120] for r in reasons)) or "NO REASON RECORDED"
    return f"{state}: {shown}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedMongo(Path(tmp) / "mongo") as server,
        FixtureServer(market="demo", hostility=Hostility(hostile_pages=True)) as market,
    ):
        env = {
            **os.environ,
            "MONGODB_URI": server.uri,
            "DARKARCHIVE_HOME": tmp,
            "DARKARCHIVE_DB": "hostile",
        }
        command = [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl"]
        code, seconds, peak = crawl_peak_rss([*command, "demo", "--mirror", market.url], env)
        client: pymongo.MongoClient = pymongo.MongoClient(server.uri, tz_aware=True)
        db = client["hostile"]
        run = db.runs.find_one(sort=[("seq", -1)]) or {}
        stored = {d["key"] for d in db.listing_versions.find({}, {"key": 1})}
        true = {t["listing_id"] for t in truth("demo", 1)["listings"]}
        hostile = {path: recorded(db, run, market.url + path) for path in HOSTILE_LINKED}
        # an ordinary index page whose links lead off the market: each is refused
        off_site = [
            e["reason"][:80]
            for e in db.run_events.find({"run": run["_id"], "kind": "refused"})
            if not (e.get("url") or "").startswith(market.url)
        ]
        hostile[HOSTILE_LINKS_PATH] = f"refusals of URLs off the market: {off_site}"
        client.close()
    figures = {
        "exit_code": code,
        "status": run.get("status"),
        "reasons": run.get("reasons", []),
        "seconds": round(seconds, 1),
        "peak_rss_mb": peak,
        "pages": run.get("counts", {}).get("pages"),
        "listings_lost": sorted(true - stored),
        "hostile": hostile,
    }
    print(f"run {run.get('_id')}: {figures['status']} (exit {code}) in {seconds:.1f} s")
    for reason in figures["reasons"]:
        print(f"  reason: {reason}")
    print(f"pages: {figures['pages']}; listings of the market lost: {len(true - stored)}")
    for path, what in hostile.items():
        print(f"  {path}: {what}")
    verdict = "under" if peak < TARGET_RSS_MB else "OVER"
    print(f"peak RSS of the crawl process: {peak} MB ({verdict} the {TARGET_RSS_MB} MB target)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
