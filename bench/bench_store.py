"""Bench of the archive's write path: first crawl, unchanged re-crawl, everything changed.

Run: .venv/bin/python bench/bench_store.py [--listings 10000] [--page-kb 22]
Starts its own embedded secantusdb on a temporary folder (or uses MONGODB_URI).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.store import Archive, EntityObservation, PageRecord, Provenance, open_database
from pipelines.store.schema import (
    BODIES,
    FEEDBACK,
    OBSERVATIONS,
    PAGES,
    RUN_EVENTS,
    RUNS,
    SOURCES,
)

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)

COLLECTIONS = (
    SOURCES,
    RUNS,
    PAGES,
    BODIES,
    "listings",
    "listing_versions",
    "vendors",
    "vendor_versions",
    OBSERVATIONS,
    FEEDBACK,
    RUN_EVENTS,
)
BATCH = 500
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def page_body(key: str, day: int, size_kb: int) -> bytes:
    rnd = random.Random(f"{key}:{day}")
    words = ["gram", "pure", "ship", "escrow", "vendor", "stealth", "tracking", "quality"]
    text = " ".join(rnd.choice(words) for _ in range(size_kb * 150))
    return f"<html><body><h1>Listing {key} day {day}</h1><p>{text}</p></body></html>".encode()[
        : size_kb * 1024
    ]


def listing(key: str, day: int, version: int) -> dict[str, object]:
    amount = Decimal(100 + int(key) % 900 + version) / Decimal(10000)
    return {
        "title": f"Listing {key} v{version}",
        "title_text": f"Listing {key} v{version}",
        "price": {"amount": amount, "currency": "BTC", "text": f"{amount} BTC"},
        "quantity": {"amount": Decimal(int(key) % 50 + 1), "unit": "g", "text": "1 g"},
        "vendor": f"v{int(key) % 300}",
        "ships_from": "NL",
        "category": ["drugs", "stimulants"][int(key) % 2],
        "posted": T0 - timedelta(days=int(key) % 90),
    }


def crawl(archive: Archive, n: int, day: int, version: int, page_kb: int) -> tuple[float, float]:
    """Return (total seconds, seconds spent in record_entities + close_run)."""
    started = time.perf_counter()
    in_entities = 0.0
    run = archive.open_run("bench", parser_version="p1", started_at=T0 + timedelta(days=day))
    fetched = T0 + timedelta(days=day)
    for start in range(0, n, BATCH):
        batch = []
        for i in range(start, min(n, start + BATCH)):
            key = str(i)
            url = f"http://bench.onion/listing/{key}"
            body = page_body(key, version, page_kb)
            sha = archive.store_page(
                run, PageRecord(url, 200, fetched, "listing", "listing", body, {"X": "1"})
            )
            assert sha is not None
            batch.append(
                EntityObservation(
                    key, listing(key, day, version), Provenance(url, sha, fetched, "p1")
                )
            )
        mark = time.perf_counter()
        archive.record_entities(run, "listing", batch)
        in_entities += time.perf_counter() - mark
    mark = time.perf_counter()
    archive.close_run(run, status="complete", counts={"expected": n})
    in_entities += time.perf_counter() - mark
    return time.perf_counter() - started, in_entities


def entity_counts(db: Database) -> dict[str, int]:
    return {name: db[name].count_documents({}) for name in COLLECTIONS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--page-kb", type=int, default=22)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_database(data_dir=Path(tmp), db_name="bench") as conn,
    ):
        conn.db.client.drop_database("bench")
        archive = Archive(conn.db)
        archive.ensure_indexes()
        print(f"server: {conn.uri_redacted} (embedded={conn.embedded}), pid {os.getpid()}")
        before: dict[str, int] = dict.fromkeys(COLLECTIONS, 0)
        for label, day, version in (
            ("first crawl", 0, 0),
            ("unchanged re-crawl", 1, 0),
            ("everything changed", 2, 1),
        ):
            seconds, entity_seconds = crawl(archive, args.listings, day, version, args.page_kb)
            after = entity_counts(conn.db)
            new = {k: after[k] - before[k] for k in COLLECTIONS if after[k] != before[k]}
            print(
                f"{label:20s} {seconds:6.1f} s total, {entity_seconds:5.1f} s entities+close; "
                f"new documents: {sum(new.values()):6d} {new}"
            )
            before = after
        stats = conn.db.command("collStats", BODIES)
        raw = sum(d["size"] for d in conn.db[BODIES].find({}, {"size": 1}))
        stored = sum(d["stored_size"] for d in conn.db[BODIES].find({}, {"stored_size": 1}))
        print(f"bodies: {raw / 1e6:.1f} MB raw, {stored / 1e6:.1f} MB zstd ({raw / stored:.1f}x)")
        logger.debug("collStats %s", stats.get("ok"))
        conn.db.client.drop_database("bench")


if __name__ == "__main__":
    main()
