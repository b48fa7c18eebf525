"""A run export and an as-of in flat memory: sorted chunks on disk, the same answer as a
whole-run sort.

A run of 20,000 listings is written through the archive (two runs, the second partial,
reparsed by a later parser that changes, drops and adds listings; pages that display
second prices and per-run values, some listings on two pages). Its export with a small
chunk size must be byte for byte the export of the implementation it replaced (rebuilt
here: every entity of the run in dicts, sorted at the end), go through several chunk
files under TMPDIR, leave none behind, and hold far less than the whole run; so must the
entities `as_of_stream` gives, unobserved ones included.
"""

from __future__ import annotations

import collections
import io
import random
import tempfile
import tracemalloc
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymongo
import pytest

from pipelines.query.asof import as_of_stream
from pipelines.store.archive import Archive
from pipelines.store.displayed import add_shown, displayed_entries
from pipelines.store.export import RESERVED, RunRates, export_run, run_content
from pipelines.store.jsontext import jsonable, write_jsonl
from pipelines.store.keyed_merge import KeySorter
from pipelines.store.model import EntityObservation, PageRecord, Provenance
from pipelines.store.observations import observed_keys
from pipelines.store.queries import feedback, get_run, observed
from pipelines.store.rereads import (
    Reread,
    RunReading,
    apply_overlay,
    overlay,
    reading_parser,
    write_reading,
)
from pipelines.store.valid_in_run import versions_in_run

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database

    from pipelines.store.embedded import EmbeddedMongo

SOURCE = "bigmkt"
LISTINGS = 20_000
VENDORS = 300
T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
SMALL = 256 * 1024  # bytes of pickled records per chunk: over a hundred chunk files here
WORDS = ["amber", "arctic", "cobalt", "dune", "fresh", "premium", "classic", "pure", "tested"]


def _listing(key: str, variant: int) -> EntityObservation:
    """A listing's content, the same for the same variant (a new variant: a new version)."""
    rnd = random.Random(f"{key}:{variant}")
    amount = Decimal(rnd.randint(1000, 900000)) / 10000
    tiers = [{"quantity": Decimal(5), "price": {"amount": amount * 5, "currency": "USD"}}]
    content = {
        "title": " ".join(rnd.choices(WORDS, k=4)) + f" #{key}",
        "price": {"amount": amount, "currency": "USD", "text": f"${amount}"},
        "tiers": tiers if rnd.random() < 0.3 else [],
        "vendor": f"v{rnd.randrange(VENDORS):04d}",
        "ships_to": rnd.sample(["US", "DE", "NL", "GB", "FR", "CA"], k=3),
        "description": " ".join(rnd.choices(WORDS, k=60)),
        "posted": T0 - timedelta(days=rnd.randrange(400)),
    }
    url = f"http://big.onion/listing/{key}"
    return EntityObservation(key, content, Provenance(url, f"{variant:064x}", T0, "p1"))


def _shown(rnd: random.Random, key: str, price: dict[str, Any]) -> list[dict[str, Any]]:
    btc = (price["amount"] / Decimal("67012.5")).quantize(Decimal("0.00000001"))
    hint = {"kind": "listing", "key": key, "field": "price_hint", "of": price}
    hint.update(amount=btc, currency="BTC", text=f"≈ {btc} BTC")
    return [hint, {"kind": "listing", "key": key, "field": "sales", "value": rnd.randrange(99)}]


def _crawl(archive: Archive, rnd: random.Random, seq: int, keys: list[str]) -> str:
    """One partial run observing `keys` in a shuffled order (a tenth changed after run 1),
    with index pages that display them, vendors and some feedback."""
    run = archive.open_run(SOURCE, parser_version="p1", started_at=T0 + timedelta(days=seq))
    btc = {"value": Decimal("67012.50"), "quote": "USD", "source": "market"}
    archive.record_rates(run, {"BTC": btc})
    order = rnd.sample(keys, len(keys))
    for start in range(0, len(order), 1000):
        variants = [seq if rnd.random() < 0.1 else 1 for _ in range(1000)]
        batch = [
            _listing(k, v) for k, v in zip(order[start : start + 1000], variants, strict=False)
        ]
        archive.record_entities(run, "listing", batch)
        for first in range(0, len(batch), 50):
            shown = []
            for obs in batch[first : first + 50]:
                shown += _shown(rnd, obs.key, dict(obs.content["price"]))
            if first == 0:  # one listing on many pages: the first page's URL, the last value
                shown += _shown(rnd, order[0], {"amount": Decimal(1), "currency": "USD"})
            url = f"http://big.onion/index/{rnd.random():.12f}"
            page = PageRecord(
                url, 200, T0, "index", "listing", url.encode(), {}, displayed=tuple(shown)
            )
            archive.store_page(run, page)
    prov = Provenance("http://big.onion/v", "ab" * 32, T0, "p1")
    vendors = [
        EntityObservation(f"v{i:04d}", {"name": f"V{i}", "rating": i % 5}, prov)
        for i in rnd.sample(range(VENDORS), VENDORS)
    ]
    archive.record_entities(run, "vendor", vendors)
    entries = [
        {
            "rating": 5,
            "text": "ok",
            "buyer": f"b{i}",
            "date_earliest": T0 - timedelta(days=i + 1),
            "date_latest": T0,
        }
        for i in range(3)
    ]
    archive.record_feedback(run, order[1], entries, prov)
    archive.close_run(run, status="partial", counts={})
    return run.run_id


@dataclass
class BigRun:
    db: Database
    runs: list[str]
    keys: list[str]


@pytest.fixture(scope="module")
def big(mongo_server: EmbeddedMongo) -> Iterator[BigRun]:
    """Two runs of a 20,000-listing market; the second saw 500 fewer and was reparsed by
    a parser that reads 14 titles differently, no longer reads one listing and reads one
    the crawl did not see."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    db = client[f"bigexport_{uuid.uuid4().hex[:8]}"]
    archive = Archive(db)
    archive.ensure_indexes()
    rnd = random.Random(7)
    keys = [f"l{n:09d}" for n in rnd.sample(range(10**9), LISTINGS)]
    first = _crawl(archive, rnd, 1, keys)
    second = _crawl(archive, rnd, 2, keys[:-500])
    rereads = [Reread("listing", keys[i], {"title": f"REREAD {i}"}, ["title"]) for i in range(14)]
    rereads += [
        Reread("listing", keys[20], None, []),
        Reread("listing", keys[-1], {"title": "read only now"}, ["title"]),
    ]
    write_reading(db, RunReading(second, SOURCE, 2, "p9", pages=1, entities=2, rereads=rereads))
    yield BigRun(db, [first, second], keys)
    client.drop_database(db.name)
    client.close()


def displayed_prices(db: Database, run_id: str, kind: str) -> dict[str, dict[str, Any]]:
    """Per entity key, what the run's pages displayed beside it, in one dict of the run."""
    found: dict[str, dict[str, Any]] = {}
    for key, url, entry in displayed_entries(db, run_id, kind):
        add_shown(found.setdefault(key, {"url": url}), entry)
    return found


def whole_run_export(db: Database, run_id: str, parser: str | None = None) -> str:
    """The export as `export_run` wrote it before streaming: each kind's entities and what
    the pages displayed in dicts of the whole run, sorted by key at the end."""
    run = get_run(db, run_id)
    assert run is not None
    out = io.StringIO()
    reader = reading_parser(db, run_id, parser)
    header = {
        "kind": "run",
        "run": run_id,
        "source": SOURCE,
        "seq": run["seq"],
        "status": run["status"],
    }
    header.update(
        parser_version=run.get("parser_version"),
        started_at=run.get("started_at"),
        finished_at=run.get("finished_at"),
        counts=run.get("counts", {}),
        reasons=run.get("reasons", []),
        rates=run.get("rates") or {},
    )
    lines = [jsonable({**header, **({"read_by": reader} if reader is not None else {})})]
    converter = RunRates(run.get("rates") or {}, run_id)
    for kind in ("listing", "vendor"):
        shown = displayed_prices(db, run_id, kind)
        keys = observed_keys(db, run_id, kind)
        found: dict[str, dict[str, Any]] = {}
        for doc in versions_in_run(db, SOURCE, kind, run["seq"], decimals=True):
            if doc["key"] in keys:
                found[doc["key"]] = {
                    f: doc[f] for f in ("key", "v", "content", "provenance", "first_seen_run")
                }
        if reader is not None:
            apply_overlay(found, overlay(db, SOURCE, kind, run["seq"], reader))
        for key in sorted(found):
            entity, displayed = found[key], shown.get(key)
            content = run_content(entity["content"], displayed, kind, converter, run_id)
            if displayed and "price_hint" in displayed:
                content["price_hint"] = {
                    k: v for k, v in displayed["price_hint"].items() if k != "of" and v is not None
                }
            line = {"kind": kind, "key": key, "version": entity["v"]}
            line.update(provenance=entity["provenance"], first_seen_run=entity["first_seen_run"])
            for name, value in content.items():
                line[f"content_{name}" if name in RESERVED else name] = value
            lines.append(jsonable(line))
    for entry in feedback(db, SOURCE, run_id=run_id):
        entry.pop("source", None)
        entry["id"] = entry.pop("_id")
        lines.append(jsonable({"kind": "feedback", **entry}))
    write_jsonl(lines, out)
    return out.getvalue()


def whole_run_as_of(
    db: Database, run_id: str, parser: str | None, include_unobserved: bool
) -> list[dict[str, Any]]:
    """`as_of`'s listings as it built them before streaming: the run's observed keys,
    versions, rereads and displayed values in dicts of the whole run, sorted at the end."""
    run = get_run(db, run_id)
    assert run is not None
    reader = reading_parser(db, run_id, parser)
    seen = observed_keys(db, run_id, "listing")
    found: dict[str, dict[str, Any]] = {}
    for doc in versions_in_run(db, SOURCE, "listing", run["seq"], decimals=True):
        if doc["key"] in seen or include_unobserved:
            found[doc["key"]] = {
                **{f: doc[f] for f in ("key", "v", "first_seen_run", "content", "provenance")},
                "observed": doc["key"] in seen,
            }
    if reader is not None:
        apply_overlay(found, overlay(db, SOURCE, "listing", run["seq"], reader))
    shown = displayed_prices(db, run_id, "listing")
    rates = RunRates(run.get("rates") or {}, run_id)
    return [
        {
            "key": key,
            "version": entity["v"],
            "first_seen_run": entity["first_seen_run"],
            "observed": entity.get("observed", True),
            "content": run_content(entity["content"], shown.get(key), "listing", rates, run_id),
            "provenance": entity["provenance"],
            **({"reread_fields": entity["reread_fields"]} if "reread_fields" in entity else {}),
        }
        for key, entity in sorted(found.items())
    ]


@pytest.fixture
def own_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR pointed at an empty folder of the test's (tempfile reads it again)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return tmp_path


def _chunk_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("darkarchive-sort-*/chunk-*"))


@pytest.mark.parametrize(
    ("run", "parser", "listings"),
    [(0, None, LISTINGS), (1, None, LISTINGS - 500), (1, "crawl", LISTINGS - 500)],
)
def test_chunked_export_is_the_whole_run_export(
    big: BigRun, own_tmpdir: Path, run: int, parser: str | None, listings: int
) -> None:
    expected = whole_run_export(big.db, big.runs[run], parser)
    stream = export_run(big.db, SOURCE, big.runs[run], parser=parser, chunk_bytes=SMALL)
    lines = [next(stream), next(stream)]  # the header and the first listing: all sorted
    assert len(_chunk_files(own_tmpdir)) > 1  # the chunked path, in TMPDIR
    lines.extend(stream)
    out = io.StringIO()
    write_jsonl(lines, out)
    assert out.getvalue() == expected
    assert list(own_tmpdir.iterdir()) == []  # nothing left behind
    assert expected.count('{"kind":"listing"') == listings


@pytest.mark.parametrize(
    ("parser", "unobserved", "read_by"),
    [(None, True, "p9"), ("crawl", True, "p1"), (None, False, "p9")],
)
def test_streamed_as_of_is_the_whole_run_as_of(
    big: BigRun, own_tmpdir: Path, parser: str | None, unobserved: bool, read_by: str
) -> None:
    """The partial second run: 500 listings still listed but unseen, and its rereads."""
    expected = whole_run_as_of(big.db, big.runs[1], parser, unobserved)
    header, stream = as_of_stream(
        big.db,
        SOURCE,
        run=big.runs[1],
        parser=parser,
        include_unobserved=unobserved,
        chunk_bytes=SMALL,
    )
    assert header["run"] == big.runs[1] and header["parser"] == read_by
    entities = [next(stream)]
    assert len(_chunk_files(own_tmpdir)) > 1  # the chunked path, in TMPDIR
    entities.extend(stream)
    assert entities == expected
    assert list(own_tmpdir.iterdir()) == []
    unseen = {e["key"] for e in entities if not e["observed"]}
    assert unseen == (set(big.keys[-500:]) if unobserved else set())


def test_rereads_change_drop_and_add_listings(big: BigRun) -> None:
    read = {e["key"]: e for e in observed(big.db, big.runs[1], "listing")}
    crawl = {e["key"]: e for e in observed(big.db, big.runs[1], "listing", parser="crawl")}
    assert list(read) == sorted(read)
    assert set(crawl) - set(read) == {big.keys[20]}
    assert set(read) - set(crawl) == {big.keys[-1]}
    differ = {k for k in crawl if k in read and read[k]["content"] != crawl[k]["content"]}
    assert differ == set(big.keys[:14])
    assert read[big.keys[-1]]["v"] is None


def test_memory_stays_flat(big: BigRun, own_tmpdir: Path) -> None:
    """Peak Python memory of the chunked export against the whole-run export's."""
    db, run_ids = big.db, big.runs

    def peak(call: Any) -> int:
        tracemalloc.start()
        try:
            call()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    whole = peak(lambda: whole_run_export(db, run_ids[0]))
    chunked = peak(
        lambda: write_jsonl(export_run(db, SOURCE, run_ids[0], chunk_bytes=SMALL), io.StringIO())
    )
    assert chunked < whole / 2, (chunked, whole)
    whole = peak(lambda: whole_run_as_of(db, run_ids[1], None, True))
    _, stream = as_of_stream(db, SOURCE, run=run_ids[1], include_unobserved=True, chunk_bytes=SMALL)
    streamed = peak(lambda: collections.deque(stream, maxlen=0))  # read, none kept
    assert streamed < whole / 2, (streamed, whole)


def test_sorter_keeps_insertion_order_of_equal_keys_across_files(own_tmpdir: Path) -> None:
    rnd = random.Random(3)
    records = [(f"k{rnd.randrange(500):03d}", i) for i in range(20_000)]
    with KeySorter(4096, fan_in=3) as sorter:
        for key, value in records:
            sorter.add(key, value)
        assert list(sorter) == sorted(records, key=lambda r: r[0])  # sort is stable
        assert sorter.chunks > 3 * 3  # merged in more than one pass
    assert list(own_tmpdir.iterdir()) == []


def test_temporary_files_go_on_error_and_on_early_stop(big: BigRun, own_tmpdir: Path) -> None:
    with pytest.raises(RuntimeError), KeySorter(1024) as sorter:
        for i in range(1000):
            sorter.add(str(i), i)
        assert _chunk_files(own_tmpdir)
        raise RuntimeError("the reader failed")
    assert list(own_tmpdir.iterdir()) == []
    stream = export_run(big.db, SOURCE, big.runs[1], chunk_bytes=SMALL)
    next(stream), next(stream)
    assert _chunk_files(own_tmpdir)
    stream.close()  # a consumer that stops (a closed pipe, an error while writing)
    assert list(own_tmpdir.iterdir()) == []
