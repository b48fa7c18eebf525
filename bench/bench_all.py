"""`make bench`: the figures issue 12 asks for, measured side by side in one run.

- crawl: the full crawl against a fetch-only Scrapy crawl of the same market
  (bench/fetch_only.py) and against `scrapy bench`, alternated trial by trial so machine
  noise hits all three alike; min/median/max of each ratio; peak RSS of each crawl; CPU
  milliseconds per page of the crawl process and of the database server. With `--compare
  SETTING=VALUE …` each trial also crawls with those Scrapy settings, side by side, in
  alternating order (`--reactor-writes` is `--compare ARCHIVE_WRITER_THREAD=False`: every
  write on the reactor thread, as before issue 12).
- reparse: pages per CPU-second of `darkarchive reparse` over the first crawl's pages
  (min/median/max of `--trials` reparses of one crawl).
- archive: bytes after crawl 1 and after each further crawl, for ten unchanged re-crawls
  and for ten daily crawls with the market's normal changes, both with per-request noise on
  every page; against the raw HTML bytes fetched.
- queries: bench/bench_queries.py at the size given (as-of, history, changes p95; export).

    .venv/bin/python bench/bench_all.py [--market demo|demo-large] [--trials 3] [--days 10]
        [--query-listings 1000 --query-runs 20] [--only crawl reparse archive queries]
        [--compare SETTING=VALUE ... | --reactor-writes]
        [--json var/bench/bench.json]

Every crawl is its own `darkarchive crawl` process (start-up included) against the fixture
server on loopback, into the embedded secantusdb; peak RSS comes from `wait4`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import bson
import pymongo

from fixtures.measured import launched, usage
from fixtures.server import FixtureServer
from pipelines.store.embedded import EmbeddedMongo
from pipelines.store.run_pages import run_pages

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING"]
SECTIONS = ("crawl", "reparse", "archive", "queries")


def measured(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> dict[str, Any]:
    """Run `command`; wall and CPU seconds, peak RSS (MB) and stdout: its own `wait4`
    figures (fixtures/measured.py), not this process's."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile() as figures:
        process = subprocess.Popen(
            launched(command, Path(figures.name)),
            env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        code = process.wait()
        out.seek(0)
        text = out.read().decode(errors="replace")
        if code not in (0, 4):  # 4: partial, still a crawl worth timing
            raise RuntimeError(f"{command} exited {code}:\n{text[-3000:]}")
        used = usage(Path(figures.name))
    return {
        "wall_s": time.monotonic() - started,
        "cpu_s": used.cpu_s,
        "rss_mb": used.maxrss_mib,
        "stdout": text,
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def stored_bytes(db: Any) -> int:
    """BSON bytes of every document: what the archive holds, whatever the engine's files."""
    return sum(len(bson.encode(d)) for c in db.list_collection_names() for d in db[c].find())


class Bench:
    """One embedded server and one fixture market shared by every section."""

    def __init__(self, stack: ExitStack, market: str, tmp: Path) -> None:
        self.market, self.tmp = market, tmp
        self.data = tmp / "mongo"
        self.server = stack.enter_context(EmbeddedMongo(self.data))
        self.fixture = stack.enter_context(FixtureServer(market=market, noise=True))
        self.client: pymongo.MongoClient = stack.enter_context(
            pymongo.MongoClient(self.server.uri, tz_aware=True)
        )
        self.env = {**os.environ, "MONGODB_URI": self.server.uri, "DARKARCHIVE_HOME": str(tmp)}
        self.databases = 0

    def fresh(self) -> str:
        self.databases += 1
        return f"bench{self.databases}"

    def crawl(self, db: str, *settings: str) -> dict[str, Any]:
        """One crawl (`settings`: NAME=VALUE); its figures and the database server's CPU."""
        server_cpu = self.server_cpu_s()
        figures = measured(
            [*CLI, "crawl", "demo", "--mirror", self.fixture.url,
             *(arg for setting in settings for arg in ("-s", setting))],
            {**self.env, "DARKARCHIVE_DB": db},
        )  # fmt: skip
        figures["db_cpu_s"] = self.server_cpu_s() - server_cpu
        run = self.client[db].runs.find_one(sort=[("seq", -1)]) or {}
        figures["pages"] = run.get("counts", {}).get("pages", 0)
        figures["status"] = run.get("status")
        figures["pages_per_s"] = figures["pages"] / figures["wall_s"]
        figures["cpu_ms_per_page"] = 1000 * figures["cpu_s"] / max(figures["pages"], 1)
        figures["db_cpu_ms_per_page"] = 1000 * figures["db_cpu_s"] / max(figures["pages"], 1)
        return figures

    def server_cpu_s(self) -> float:
        """User + system CPU seconds the database server has used (Linux /proc)."""
        fields = Path(f"/proc/{self.server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def fetch_only(self) -> dict[str, Any]:
        figures = measured(
            [sys.executable, str(ROOT / "bench" / "fetch_only.py"), self.fixture.url], self.env
        )
        result = json.loads(figures["stdout"].strip().splitlines()[-1])
        return {
            **figures,
            "pages": result["pages"],
            "pages_per_s": result["pages"] / figures["wall_s"],
        }

    def scrapy_bench(self) -> dict[str, Any]:
        """`scrapy bench` outside the project (its own spider and server, 10 s)."""
        figures = measured([sys.executable, "-m", "scrapy", "bench"], self.env, cwd=self.tmp)
        text = figures["stdout"]
        pages = int(re.search(r"'response_received_count': (\d+)", text).group(1))  # type: ignore[union-attr]
        seconds = float(re.search(r"'elapsed_time_seconds': ([\d.]+)", text).group(1))  # type: ignore[union-attr]
        return {**figures, "pages": pages, "pages_per_s": pages / seconds}


def crawl_section(bench: Bench, trials: int, compare: list[str] | None = None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    crawls: dict[str, list[str]] = {"crawl": [], **({"compare": compare} if compare else {})}
    for trial in range(trials):
        bench.fixture.set_day(1)
        row = {"scrapy_bench": bench.scrapy_bench(), "fetch_only": bench.fetch_only()}
        for name in list(crawls)[:: 1 if trial % 2 == 0 else -1]:  # alternate which goes first
            row[name] = bench.crawl(bench.fresh(), *crawls[name])
        for figures in row.values():
            figures.pop("stdout", None)
        rows.append(row)
        print(f"  trial {trial + 1}: " + ", ".join(
            f"{name} {row[name]['pages_per_s']:.1f} pages/s "
            f"({row[name]['cpu_ms_per_page']:.1f} + db {row[name]['db_cpu_ms_per_page']:.1f} "
            f"CPU ms/page)" for name in crawls)
            + f", fetch-only {row['fetch_only']['pages_per_s']:.1f}, "
              f"scrapy bench {row['scrapy_bench']['pages_per_s']:.1f}", flush=True)  # fmt: skip
    result: dict[str, Any] = {"trials": rows, "pages": rows[0]["crawl"]["pages"]}
    if compare:
        result["compare_settings"] = compare
    for name in crawls:
        prefix = "" if name == "crawl" else "compare_"
        result[f"{prefix}crawl_vs_fetch_only"] = spread(
            [r[name]["pages_per_s"] / r["fetch_only"]["pages_per_s"] for r in rows]
        )
        result[f"{prefix}crawl_vs_scrapy_bench"] = spread(
            [r[name]["pages_per_s"] / r["scrapy_bench"]["pages_per_s"] for r in rows]
        )
        result[f"{prefix}peak_rss_mb"] = spread([r[name]["rss_mb"] for r in rows])
        result[f"{prefix}cpu_ms_per_page"] = spread([r[name]["cpu_ms_per_page"] for r in rows])
        result[f"{prefix}db_cpu_ms_per_page"] = spread(
            [r[name]["db_cpu_ms_per_page"] for r in rows]
        )
    return result


def reparse_section(bench: Bench, trials: int) -> dict[str, Any]:
    """One crawl, then `trials` reparses of it (start-up included): CPU seconds are what one
    core spends, so pages per CPU-second is the figure per core."""
    db = bench.fresh()
    bench.fixture.set_day(1)
    bench.crawl(db)
    pages = bench.client[db].pages.count_documents({"seq": 1})
    runs = []
    for _ in range(trials):
        figures = measured(
            [*CLI, "reparse", "demo", "--run", "1"], {**bench.env, "DARKARCHIVE_DB": db}
        )
        runs.append({"cpu_s": figures["cpu_s"], "wall_s": figures["wall_s"]})
    per_cpu_s = spread([pages / r["cpu_s"] for r in runs])
    return {"pages": pages, "trials": runs, "per_cpu_s": per_cpu_s,
            "pages_per_cpu_s": per_cpu_s["median"]}  # fmt: skip


def byte_breakdown(db: Any) -> dict[str, dict[str, Any]]:
    """Per collection: documents, their BSON bytes and each index's key bytes (collStats)."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(db.list_collection_names()):
        stats = db.command("collStats", name)
        out[name] = {"count": stats["count"], "size": stats["size"], "indexes": stats["indexSizes"]}
    return out


def archive_section(bench: Bench, days: int) -> dict[str, Any]:
    """Each mode on its own embedded server, so each has its own data folder to measure."""
    out: dict[str, Any] = {}
    for mode in ("unchanged", "daily"):
        db, data = bench.fresh(), bench.tmp / f"mongo-{mode}"
        with EmbeddedMongo(data) as server, pymongo.MongoClient(server.uri) as client:
            env = {**bench.env, "MONGODB_URI": server.uri}
            series = []
            for crawl in range(1, days + 2):
                bench.fixture.set_day(1 if mode == "unchanged" else crawl)
                figures = measured([*CLI, "crawl", "demo", "--mirror", bench.fixture.url],
                                   {**env, "DARKARCHIVE_DB": db})  # fmt: skip
                raw = sum(
                    page.get("size") or 0
                    for run in client[db].runs.find({}, {"_id": 1})
                    for page in run_pages(client[db], run["_id"], ("size",))
                )
                series.append({
                    "crawl": crawl, "raw_html": raw, "stored": stored_bytes(client[db]),
                    "rss_mb": figures["rss_mb"], "cpu_s": figures["cpu_s"],
                })  # fmt: skip
                print(f"  {mode} crawl {crawl}: raw {raw:,} B, stored {series[-1]['stored']:,} B",
                      flush=True)  # fmt: skip
            breakdown = byte_breakdown(client[db])
            client.admin.command("fsync")
        first = series[0]["stored"]
        out[mode] = {
            "series": series,
            "added_per_crawl_of_first": [
                (b["stored"] - a["stored"]) / first for a, b in itertools.pairwise(series)
            ],
            "raw_over_stored": series[-1]["raw_html"] / series[-1]["stored"],
            # after a clean stop: what the folder keeps, log files included
            "data_folder": folder_bytes(data),
            "raw_over_data_folder": series[-1]["raw_html"] / folder_bytes(data),
            "files": {p.name: p.stat().st_size for p in (data / "db").glob("*") if p.is_file()},
            "collections": breakdown,
        }
    return out


def queries_section(listings: int, runs: int, repeat: int) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "bench" / "bench_queries.py"), "--sources", "1",
               "--listings", str(listings), "--runs", str(runs), "--change", "0.05",
               "--repeat", str(repeat)]  # fmt: skip
    text = measured(command, dict(os.environ))["stdout"]
    figures: dict[str, Any] = {"command": " ".join(command[1:]), "lines": text.splitlines()}
    for line in text.splitlines():
        if m := re.match(r"(.+?)\s+median\s+([\d.]+) s\s+p95\s+([\d.]+) s", line):
            figures[m.group(1).strip()] = {
                "median_s": float(m.group(2)),
                "p95_s": float(m.group(3)),
            }
        elif m := re.match(r"export one run: ([\d.]+) s \(([\d,]+) lines\)", line):
            rows = int(m.group(2).replace(",", ""))
            figures["export"] = {
                "s": float(m.group(1)),
                "rows": rows,
                "rows_per_s": rows / float(m.group(1)),
            }
        elif m := re.match(r"built ([\d,]+) listing versions", line):
            figures["versions"] = int(m.group(1).replace(",", ""))
    return figures


def table(result: dict[str, Any]) -> list[str]:
    """The figures against issue 12's targets, one line each."""
    lines = [f"{'figure':<46} {'measured':>26}   target"]

    def row(name: str, value: str, target: str) -> None:
        lines.append(f"{name:<46} {value:>26}   {target}")

    def ratio(s: dict[str, float]) -> str:
        return f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f}"

    if crawl := result.get("crawl"):
        row("crawl / fetch-only (min/median/max)", ratio(crawl["crawl_vs_fetch_only"]), ">= 0.85")
        row(
            "crawl / scrapy bench (min/median/max)",
            ratio(crawl["crawl_vs_scrapy_bench"]),
            ">= 1.00",
        )
        row(
            f"peak RSS of a crawl, {crawl['pages']} pages (MB)", ratio(crawl["peak_rss_mb"]), "flat"
        )
        row("crawl CPU ms per page", ratio(crawl["cpu_ms_per_page"]), "")
        row("database server CPU ms per page", ratio(crawl["db_cpu_ms_per_page"]), "")
        if settings := crawl.get("compare_settings"):
            lines.append(f"  side by side, with {' '.join(settings)}:")
            row("  crawl / fetch-only", ratio(crawl["compare_crawl_vs_fetch_only"]), "")
            row("  crawl / scrapy bench", ratio(crawl["compare_crawl_vs_scrapy_bench"]), "")
            row(
                "  crawl, db CPU ms/page (median)",
                f"{crawl['compare_cpu_ms_per_page']['median']:.1f}, "
                f"{crawl['compare_db_cpu_ms_per_page']['median']:.1f}",
                "",
            )
    if reparse := result.get("reparse"):
        per = reparse["per_cpu_s"]
        row("reparse pages per CPU-second (min/median/max)",
            f"{per['min']:.0f} / {per['median']:.0f} / {per['max']:.0f}", ">= 300")  # fmt: skip
    if archive := result.get("archive"):
        added = archive["unchanged"]["added_per_crawl_of_first"]
        row("unchanged re-crawl adds (of crawl 1's bytes)", f"{max(added):.1%} max", "<= 2 %")
        daily = archive["daily"]
        row(f"raw HTML / stored after {len(daily['series'])} daily crawls",
            f"{daily['raw_over_stored']:.1f}x", "")  # fmt: skip
        row(f"raw HTML / data folder after {len(daily['series'])} daily crawls",
            f"{daily['raw_over_data_folder']:.1f}x", ">= 20x")  # fmt: skip
    if queries := result.get("queries"):
        for name, figure in queries.items():
            if isinstance(figure, dict) and "p95_s" in figure:
                row(f"{name} p95 at {queries.get('versions', 0):,} versions",
                    f"{figure['p95_s'] * 1000:.0f} ms", "<= 20 ms")  # fmt: skip
        if export := queries.get("export"):
            row("run export rows/s", f"{export['rows_per_s']:,.0f}", ">= 20,000")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--market", default="demo", help="demo (401 pages) or demo-large (5,463)")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--days", type=int, default=10, help="crawls after the first")
    parser.add_argument("--query-listings", type=int, default=1000)
    parser.add_argument("--query-runs", type=int, default=20)
    parser.add_argument("--query-repeat", type=int, default=20)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "bench.json")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="SETTING=VALUE",
        help="crawl: also crawl with these Scrapy settings, side by side",
    )
    parser.add_argument(
        "--reactor-writes",
        action="store_const",
        dest="compare",
        const=["ARCHIVE_WRITER_THREAD=False"],
        help="crawl: --compare ARCHIVE_WRITER_THREAD=False (every write on the reactor thread)",
    )
    args = parser.parse_args()
    result: dict[str, Any] = {
        "market": args.market,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        bench = Bench(stack, args.market, Path(tmp))
        if "crawl" in args.only:
            print(f"crawl: {args.trials} alternated trials on {args.market}", flush=True)
            result["crawl"] = crawl_section(bench, args.trials, args.compare)
        if "reparse" in args.only:
            print("reparse", flush=True)
            result["reparse"] = reparse_section(bench, args.trials)
        if "archive" in args.only:
            print(f"archive: crawl 1 and {args.days} more, unchanged and daily", flush=True)
            result["archive"] = archive_section(bench, args.days)
    if "queries" in args.only:
        print(f"queries: {args.query_listings} listings x {args.query_runs} runs", flush=True)
        result["queries"] = queries_section(args.query_listings, args.query_runs, args.query_repeat)
    print("\n".join(table(result)))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
