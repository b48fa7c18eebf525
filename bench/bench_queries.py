"""Bench of the query library on a synthetic archive of a million listing versions.

Run: .venv/bin/python bench/bench_queries.py [--sources 8] [--listings 12500] [--runs 20]
     [--change 0.45] [--repeat 30] [--keep DIR] [--build-only | --export-only]

Starts its own embedded secantusdb on a temporary folder (or on `--keep DIR`, where a
built archive is reused: the build takes minutes, the queries seconds). The archive is
written as the store writes it (version documents with their validity, tokens, runs with
rates and counts, observation lists, feedback), in bulk, not through a crawl, and indexed
after. Prints the median and p95 latency of as-of, history (USD per run), changes and
search, and the time to export one run, each with the CPU seconds of the client and of the
server (the steadier figures on a shared machine), the client's peak RSS during the
export alone and the sha256 of its bytes. Not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymongo

from pipelines.query import Search, as_of, changes, price_series, search
from pipelines.store.codec import content_hash, to_bson
from pipelines.store.embedded import EmbeddedMongo
from pipelines.store.export import export_run, write_jsonl
from pipelines.store.schema import (
    FEEDBACK,
    OBSERVATIONS,
    OPEN_SEQ,
    RUNS,
    SOURCES,
    ensure_indexes,
    versions_collection,
)
from pipelines.store.tokens import TOKENS_VERSION, listing_tokens
from pipelines.store.valid_in_run import SPAN, backfill_spans, span_buckets, spans_complete

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pymongo.database import Database

logger = logging.getLogger(__name__)

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
BATCH = 2000
RATES = {"BTC": Decimal("67012.50"), "XMR": Decimal("162.30")}
ADJECTIVES = [
    "fresh",
    "premium",
    "classic",
    "budget",
    "organic",
    "pure",
    "lab",
    "tested",
    "top",
    "shelf",
    "aaa",
]
NAMES = [
    "amber",
    "arctic",
    "blue",
    "cobalt",
    "crimson",
    "dune",
    "electric",
    "falcon",
    "fjord",
    "frozen",
    "golden",
    "harbor",
    "heron",
    "humble",
    "jade",
    "juniper",
    "kind",
    "lunar",
    "maple",
    "marble",
    "nova",
    "ocean",
    "orchid",
    "pixel",
    "quiet",
    "rapid",
    "raven",
    "river",
    "rustic",
    "silver",
    "solar",
    "stone",
    "thistle",
    "tundra",
    "velvet",
    "wild",
    "willow",
    "zephyr",
]
PRODUCTS = [
    "kush",
    "haze",
    "jack",
    "dream",
    "blend",
    "crystal",
    "tabs",
    "caps",
    "solution",
    "powder",
    "chocolate",
    "hash",
]
CATEGORIES = [
    ["Cannabis", "Flower"],
    ["Cannabis", "Hash"],
    ["Cannabis", "Edibles"],
    ["Stimulants", "Powder"],
    ["Stimulants", "Pills"],
    ["Psychedelics", "Paper"],
    ["Pharmacy", "Pills"],
    ["Pharmacy", "Liquids"],
    ["Dissociatives", "Crystal"],
    ["Opioids", "Pills"],
]
COUNTRIES = ["NL", "DE", "GB", "US", "FR", "ES", "PT", "SE", "CZ", "PL", "BE", "IT", "CA", "AU"]
SENTENCES = [
    "Stealth shipping with tracking on every order.",
    "Prices follow the exchange rate, the crypto amount is what counts.",
    "Bulk buyers can message us for custom quantities.",
    "Reships are offered once per customer.",
    "Every batch is tested before it leaves our hands.",
    "Expect three to seven working days for domestic orders.",
]


def listing_content(rnd: random.Random, vendor: str) -> dict[str, Any]:
    grams = rnd.choice((1, 3.5, 7, 14, 28))
    currency = rnd.choice(("BTC", "BTC", "XMR", "USD"))
    usd = Decimal(rnd.randint(10, 900))
    amount = (usd / RATES[currency]).quantize(Decimal("0.00000001")) if currency in RATES else usd
    name = f"{rnd.choice(NAMES).title()} {rnd.choice(NAMES).title()} {rnd.choice(PRODUCTS).title()}"
    return {
        "title": f"{rnd.choice(ADJECTIVES).title()} {name} - {grams}g",
        "category_path": rnd.choice(CATEGORIES),
        "description": " ".join(rnd.sample(SENTENCES, 2)) + f" Our {name} is the real thing.",
        "vendor": vendor,
        "price": {"amount": amount, "currency": currency, "text": f"{amount} {currency}"},
        "quantity": {
            "amount": Decimal(str(grams)),
            "unit": "g",
            "count": None,
            "text": f"{grams}g",
        },
        "price_per_unit": {
            "amount": (amount / Decimal(str(grams))).quantize(Decimal("0.00000001")),
            "currency": currency,
            "unit": "g",
        },
        "tiers": [],
        "ships_from": rnd.choice(COUNTRIES),
        "ships_to": rnd.sample(COUNTRIES, 3) if rnd.random() < 0.7 else ["*"],
    }


def source_history(
    source: str, listings: int, runs: int, change: float, seed: int
) -> Iterator[tuple[str, dict[str, Any] | None, int]]:
    """Yield (kind, document, run seq): version documents, then run markers.

    About 2 % of listings are new and 1.5 % delisted per run; `change` is the share of
    listed listings whose price changes per run.
    """
    rnd = random.Random(seed)
    vendors = [f"{rnd.choice(NAMES)}-{rnd.choice(NAMES)}-{i}" for i in range(200)]
    births = [1] * listings + [rnd.randint(2, runs) for _ in range(int(listings * 0.02 * runs))]
    for index, born in enumerate(births):
        key = f"l{index:07d}"
        content = listing_content(rnd, rnd.choice(vendors))
        tokens = listing_tokens(content)
        v, start = 1, born
        for seq in range(born + 1, runs + 2):
            gone = seq <= runs and rnd.random() < 0.015
            changed = seq <= runs and rnd.random() < change
            if seq <= runs and not gone and not changed:
                continue
            end = "delisted" if gone else ("changed" if seq <= runs else None)
            doc = version_doc(source, key, v, content, tokens, (born, start, seq), end)
            yield "version", doc, start
            if gone:
                break
            if seq > runs:
                break
            price = content["price"]
            amount = (
                price["amount"] * Decimal(rnd.choice(("0.9", "0.95", "1.05", "1.1")))
            ).quantize(price["amount"])
            content = {**content, "price": {**price, "amount": amount, "text": f"{amount}"}}
            v, start = v + 1, seq


def version_doc(
    source: str,
    key: str,
    v: int,
    content: dict[str, Any],
    tokens: list[str],
    seqs: tuple[int, int, int],
    end: str | None,
) -> dict[str, Any]:
    """A version as `EntityWriter._version_doc` writes it; `seqs` = (born, start, stop)."""
    born, start, stop = seqs
    closed = end is not None
    bson = to_bson(content)
    return {
        "_id": f"{source}:{key}:{v}",
        "source": source,
        "key": key,
        "v": v,
        "hash": content_hash(bson),
        "content": bson,
        "provenance": {
            "run_id": run_id(source, start),
            "url": f"http://{source}.onion/listing/{key}",
            "page_sha256": "ab" * 32,
            "parser_version": "bench",
            "fetched_at": T0 + timedelta(days=start),
        },
        "first_seen_run": run_id(source, born),
        "valid_from_seq": start,
        "valid_from_run": run_id(source, start),
        "valid_to_seq": stop if closed else OPEN_SEQ,
        "valid_to_run": run_id(source, stop) if closed else None,
        **({"end": end, "spans": span_buckets(start, stop)} if closed else {}),
        "parser_changed": False,
        "tokens": tokens,
        "tokens_v": TOKENS_VERSION,
    }


def run_id(source: str, seq: int) -> str:
    return f"{source}:{seq:06d}"


def build(db: Database, sources: int, listings: int, runs: int, change: float) -> int:
    """Write the synthetic archive; return the number of listing versions.

    The indexes are made after the load (by `main`): the same archive, built several
    times faster than under eight indexes, the multikey `tokens` one included.
    """
    coll = db[versions_collection("listing")]
    total, started = 0, time.monotonic()
    for s in range(sources):
        source = f"market{s}"
        observed: dict[int, set[str]] = {seq: set() for seq in range(1, runs + 1)}
        counts = {seq: {"new": 0, "changed": 0, "delisted": 0} for seq in range(1, runs + 1)}
        batch: list[dict[str, Any]] = []
        for _, doc, _start in source_history(source, listings, runs, change, seed=s):
            assert doc is not None
            stop = doc["valid_to_seq"] if doc["valid_to_seq"] != OPEN_SEQ else runs + 1
            for seq in range(doc["valid_from_seq"], stop):
                observed[seq].add(doc["key"])
            counts[doc["valid_from_seq"]]["new" if doc["v"] == 1 else "changed"] += 1
            if doc.get("end") == "delisted":
                counts[doc["valid_to_seq"]]["delisted"] += 1
            batch.append(doc)
            if len(batch) >= BATCH:
                coll.insert_many(batch, ordered=False)
                total += len(batch)
                batch = []
                if total % 50_000 < BATCH:
                    rate = total / (time.monotonic() - started)
                    print(f"  {total:,} versions, {rate:,.0f}/s", flush=True)
        if batch:
            coll.insert_many(batch, ordered=False)
            total += len(batch)
        write_runs(db, source, runs, observed, counts)
        write_feedback(db, source, observed[runs], seed=s)
    return total


def write_runs(
    db: Database,
    source: str,
    runs: int,
    observed: dict[int, set[str]],
    counts: dict[int, dict[str, int]],
) -> None:
    rates = {
        code: {"value": value, "quote": "USD", "source": "market", "text": f"1 {code} = ${value}"}
        for code, value in RATES.items()
    }
    for seq in range(1, runs + 1):
        rid = run_id(source, seq)
        kind_counts = {**counts[seq], "observed": len(observed[seq]), "listed": len(observed[seq])}
        db[RUNS].insert_one(
            to_bson(
                {
                    "_id": rid,
                    "source": source,
                    "seq": seq,
                    "status": "complete",
                    "parser_version": "bench",
                    "started_at": T0 + timedelta(days=seq),
                    "finished_at": T0 + timedelta(days=seq, hours=1),
                    "rates": rates,
                    "counts": {"listing": kind_counts},
                    "reasons": [],
                }
            )
        )
        keys = sorted(observed[seq])
        db[OBSERVATIONS].insert_many(
            [
                {
                    "_id": f"{rid}:listing:{i}",
                    "run": rid,
                    "source": source,
                    "seq": seq,
                    "kind": "listing",
                    "keys": keys[i : i + 20_000],
                }
                for i in range(0, len(keys), 20_000)
            ]
        )
    db[SOURCES].insert_one({"_id": source, "seq": runs, "spans": SPAN})


def write_feedback(db: Database, source: str, keys: set[str], seed: int) -> None:
    rnd = random.Random(seed)
    docs = []
    for i, key in enumerate(sorted(keys)[::4]):
        when = T0 + timedelta(days=rnd.randint(-30, 20))
        docs.append(
            {
                "_id": f"{source}:fb:{i}",
                "source": source,
                "listing_key": key,
                "buyer": "b***1",
                "rating": 5,
                "text": "Good.",
                "date_earliest": when,
                "date_latest": when + timedelta(days=1),
                "first_run": run_id(source, 1),
                "first_seq": 1,
            }
        )
    for i in range(0, len(docs), BATCH):
        db[FEEDBACK].insert_many(docs[i : i + BATCH], ordered=False)


def server_cpu(pid: int | None) -> float:
    """CPU seconds the server process has used (0 when unknown): on a shared machine the
    steadier figure than wall time."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(
    label: str, repeat: int, call: Callable[[random.Random], int], pid: int | None = None
) -> dict[str, Any]:
    """Median and p95 wall time of `call`, which returns the rows it answered: with the
    rows, the server's CPU per row says whether a latency target is within reach at all."""
    rnd = random.Random(label)
    times, client, server, rows = [], [], [], []
    for _ in range(repeat):
        started, cpu, served = time.perf_counter(), time.process_time(), server_cpu(pid)
        rows.append(call(rnd))
        times.append(time.perf_counter() - started)
        client.append(time.process_time() - cpu)
        server.append(server_cpu(pid) - served)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    answered, served_cpu = statistics.median(rows), statistics.median(server)
    per_row = served_cpu / answered * 1e6 if answered else 0.0
    figure = {
        "query": label,
        "median_s": statistics.median(times),
        "p95_s": p95,
        "n": repeat,
        "client_cpu_s": statistics.median(client),
        "server_cpu_s": served_cpu,
        "rows": answered,
    }
    print(
        f"{label:<28} median {figure['median_s']:8.3f} s   p95 {p95:8.3f} s   (n={repeat})"
        f"   cpu median: client {figure['client_cpu_s']:.3f} s,"
        f" server {served_cpu:.3f} s; rows median {answered:,.0f}"
        f" ({per_row:.0f} µs of server CPU per row)"
    )
    return figure


def bench(
    db: Database, runs: int, repeat: int, pid: int | None = None, *, export_only: bool = False
) -> None:
    source = "market0"
    keys = [
        d["key"]
        for d in db[versions_collection("listing")]
        .find({"source": source, "v": 3}, {"key": 1})
        .limit(2000)
    ]

    def asof(rnd: random.Random) -> int:
        return len(as_of(db, source, run=run_id(source, rnd.randint(1, runs)))["entities"])

    def history(rnd: random.Random) -> int:
        return len(price_series(db, source, rnd.choice(keys))["series"])

    def change_set(rnd: random.Random) -> int:
        seq = rnd.randint(1, runs - 1)
        found = changes(db, source, run_id(source, seq), run_id(source, seq + 1))
        return sum(len(found[part]) for part in ("new", "changed", "delisted", "relisted"))

    def words(rnd: random.Random) -> int:
        query = Search(text=f"{rnd.choice(NAMES)} {rnd.choice(PRODUCTS)}", source=source)
        return int(search(db, query)["count"])

    def filtered(rnd: random.Random) -> int:
        query = Search(
            text=rnd.choice(PRODUCTS),
            source=source,
            ships_to=rnd.choice(COUNTRIES),
            max_usd=Decimal(300),
        )
        return int(search(db, query)["count"])

    def everywhere(rnd: random.Random) -> int:
        text = f"{rnd.choice(NAMES)} {rnd.choice(NAMES)} {rnd.choice(PRODUCTS)}"
        return int(search(db, Search(text=text))["count"])

    if export_only:
        for seq in sorted({1, max(1, runs // 2), runs}):
            for _ in range(repeat):
                export(db, source, seq, pid)
        return
    timed("as-of (random run)", max(5, repeat // 3), asof, pid)
    timed("history (USD per run)", repeat, history, pid)
    timed("changes (consecutive runs)", repeat, change_set, pid)
    timed("search 2 words, 1 source", repeat, words, pid)
    timed("search word+ships-to+USD", repeat, filtered, pid)
    timed("search 3 words, all sources", repeat, everywhere, pid)
    for seq in sorted({1, max(1, runs // 2), runs}):
        export(db, source, seq, pid)


def export(db: Database, source: str, seq: int, pid: int | None) -> None:
    """One run export to JSON lines: wall, the CPU of each side per line, and the client's
    peak RSS during the export alone (the bytes go to a hash, not to memory)."""
    out = HashingWriter()
    before = rss_mb("VmRSS")
    reset = reset_peak_rss()
    started, cpu, served = time.perf_counter(), time.process_time(), server_cpu(pid)
    lines = write_jsonl(export_run(db, source, run_id(source, seq)), out)
    elapsed = time.perf_counter() - started
    client, server = time.process_time() - cpu, server_cpu(pid) - served
    if reset:
        peak = f"peak RSS {rss_mb('VmHWM'):.0f} MB during the export (from {before:.0f} MB)"
    else:  # the process's peak since it started: an upper bound
        peak = f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    print(
        f"export run {seq}: {elapsed:.2f} s ({lines:,} lines, {lines / elapsed:,.0f}/s);"
        f" cpu client {client:.2f} s ({client / lines * 1e6:.0f} µs/line),"
        f" server {server:.2f} s ({server / lines * 1e6:.0f} µs/line);"
        f" {peak}; sha256 {out.hexdigest()[:16]}",
        flush=True,
    )


class HashingWriter:
    """A text sink that keeps the sha256 of what is written, not the text: holding a
    whole export in a StringIO would count its size in the export's peak RSS."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def write(self, text: str) -> int:
        self._hash.update(text.encode())
        return len(text)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_mb(field: str) -> float:
    """`VmRSS` or `VmHWM` of this process, in MB (0 when unknown)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def backfill(db: Database) -> None:
    """Give an archive built before `spans` existed its spans, as `darkarchive reindex` does."""
    for doc in db[SOURCES].find({}, {"_id": 1}):
        if not spans_complete(db, doc["_id"]):
            started = time.monotonic()
            done = backfill_spans(db, doc["_id"])
            elapsed = time.monotonic() - started
            print(f"  {doc['_id']}: spans backfilled on {done} versions in {elapsed:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=8)
    parser.add_argument("--listings", type=int, default=12_500, help="per source, at run 1")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--change", type=float, default=0.45)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", type=Path, default=None, help="data folder to build or reuse")
    parser.add_argument("--build-only", action="store_true", help="build (into --keep), no queries")
    parser.add_argument(
        "--export-only", action="store_true", help="only the run exports, --repeat times each"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        with EmbeddedMongo(folder, cache_size="1G") as server:
            client: pymongo.MongoClient = pymongo.MongoClient(server.uri, tz_aware=True)
            db = client["bench"]
            built = db[versions_collection("listing")].estimated_document_count()
            if not built:
                started = time.monotonic()
                built = build(db, args.sources, args.listings, args.runs, args.change)
                loaded = time.monotonic() - started
                ensure_indexes(db)
                elapsed = time.monotonic() - started
                print(
                    f"built {built:,} listing versions in {elapsed:.0f} s"
                    f" (load {loaded:.0f} s, indexes {elapsed - loaded:.0f} s)",
                    flush=True,
                )
            else:
                started = time.monotonic()
                ensure_indexes(db)  # an archive built by an older version gets today's indexes
                elapsed = time.monotonic() - started
                print(f"reusing {built:,} listing versions in {folder} (indexes {elapsed:.0f} s)")
                backfill(db)
            if not args.build_only:
                bench(db, args.runs, args.repeat, server.pid, export_only=args.export_only)
            client.close()


if __name__ == "__main__":
    main()
