"""Volatile regions: a page that changed only in its declared noise is archived as unchanged.

The noise is the fixture markets' own block (fixtures/noise.py: a form token, the server's
clock, "users online"); the source key is validated on load like every other key.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from crawler.sources.loader import SourceConfigError, load_source
from fixtures.noise import NOISE_CLASS, with_noise
from pipelines.store.bodies import DELTA, FULL, load_bodies
from pipelines.store.model import PageRecord, RunRef
from pipelines.store.page_packs import PACK_PAGES, packed_bodies
from pipelines.store.pages import PageWriter, head_id
from pipelines.store.run_pages import run_page, run_pages
from pipelines.store.volatile import content_digest, region_key

if TYPE_CHECKING:
    from pathlib import Path

    from pymongo.database import Database

    from pipelines.store.archive import Archive

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REGIONS = [{"css": f"footer.{NOISE_CLASS}"}]
ROWS = "".join(f"<tr><td>offer {i}</td><td>{10 + i} USD</td></tr>" for i in range(300))


def market_page(price: int = 10) -> bytes:
    """A listing page with a fresh noise block: new bytes on every call."""
    html = f"<html><body><h1>Kush</h1><p class=price>{price} USD</p><table>{ROWS}</table>"
    return with_noise(html + "</body></html>").encode()


def page(url: str, body: bytes, day: int) -> PageRecord:
    return PageRecord(
        url=url, status=200, fetched_at=T0 + timedelta(days=day), state="listing",
        kind="listing", body=body, headers={"content-type": "text/html"},
    )  # fmt: skip


def body_document(db: Database, sha: str) -> dict[str, Any]:
    """A body's document, from `bodies` or from its page's pack."""
    return db.bodies.find_one({"_id": sha}) or packed_bodies(db, [sha])[sha]


def crawl(archive: Archive, pages: dict[str, bytes], day: int, volatile: bool = True) -> RunRef:
    config = {"volatile": REGIONS} if volatile else {}
    run = archive.open_run("mkt", parser_version="p1", started_at=T0, config=config)
    for url, body in pages.items():
        archive.store_page(run, page(url, body, day))
    archive.flush()
    return run


def test_noise_is_cut_from_the_content_digest_and_nothing_else() -> None:
    xpaths = region_key(REGIONS)
    first, second = market_page(), market_page()
    assert first != second
    assert content_digest(first, xpaths) == content_digest(second, xpaths)
    assert content_digest(first, xpaths) != content_digest(market_page(price=11), xpaths)
    assert content_digest(first, ()) != content_digest(second, ())  # no regions: all counts
    assert content_digest(b"", xpaths) is None  # not HTML: always a change


def test_an_unchanged_noisy_page_costs_a_tiny_delta_and_keeps_its_evidence(
    archive: Archive, db: Database
) -> None:
    urls = [f"http://m.onion/listing/{i}" for i in range(3)]
    day1 = {url: market_page() for url in urls}
    crawl(archive, day1, 0)
    day2 = {url: market_page() for url in urls}
    day2[urls[2]] = market_page(price=99)  # a real change
    run2 = crawl(archive, day2, 1)
    heads = {d["_id"]: d for d in db.body_heads.find({"source": "mkt"})}
    for url in urls[:2]:  # only noise moved: stored against the head, which stays
        new, old = (hashlib.sha256(b[url]).hexdigest() for b in (day2, day1))
        assert db.bodies.find_one({"_id": new}) is None  # packed with its page record
        doc = body_document(db, new)
        assert (doc["compression"], doc["base"]) == (DELTA, old)
        assert doc["stored_size"] < 120  # the noise alone, not the page
        assert heads[head_id("mkt", url)]["sha256"] == old
        assert db.bodies.find_one({"_id": old})["compression"] == FULL
    # The two noise-only pages are one pack; the changed page has its own record.
    (pack,) = db.page_packs.find({"run": run2.run_id})
    assert pack["pages"] == 2
    assert [p["url"] for p in db.pages.find({"run": run2.run_id})] == [urls[2]]
    changed = hashlib.sha256(day2[urls[2]]).hexdigest()
    assert heads[head_id("mkt", urls[2])]["sha256"] == changed  # a change moves the head
    assert db.bodies.find_one({"_id": changed})["compression"] == FULL
    # Every page of every run: its record, and its raw bytes rebuilt and SHA-checked.
    for fetched in (day1, day2):
        shas = {hashlib.sha256(b).hexdigest(): b for b in fetched.values()}
        assert load_bodies(db, shas) == shas
    records = {p["url"]: p for p in run_pages(db, run2.run_id)}
    for url in urls:
        record = records[url]
        assert record["sha256"] == hashlib.sha256(day2[url]).hexdigest()
        assert (record["status"], record["fetched_at"]) == (200, T0 + timedelta(days=1))


def test_unchanged_pages_over_many_runs_stay_within_the_chain_bound(
    db: Database, archive: Archive
) -> None:
    writer = PageWriter(db, full_every=3)
    url, bodies = "http://m.onion/listing/x", []
    for day in range(8):
        run = archive.open_run(
            "mkt", parser_version="p1", started_at=T0, config={"volatile": REGIONS}
        )
        body = market_page(price=10 + day // 2)  # a change every other day, noise every day
        writer.add(run, page(url, body, day))
        writer.flush()
        bodies.append(body)
    shas = {hashlib.sha256(b).hexdigest(): b for b in bodies}
    assert load_bodies(db, shas) == shas
    for sha in shas:
        steps, doc = 1, body_document(db, sha)
        while doc["compression"] == DELTA:
            steps, doc = steps + 1, body_document(db, doc["base"])
        assert steps <= 3


def test_a_page_fetched_again_in_its_run_reads_as_its_latest_fetch(
    archive: Archive, db: Database
) -> None:
    """A replay (a retry, a resumed crawl) may store a URL twice in one run, once packed and
    once in `pages`, or in two packs: readers get the latest fetch, as `pages` alone did."""
    urls = [f"http://m.onion/listing/{i}" for i in range(3)]
    crawl(archive, {url: market_page() for url in urls}, 0)
    writer = PageWriter(db)
    run = archive.open_run("mkt", parser_version="p1", started_at=T0, config={"volatile": REGIONS})
    first = {url: market_page() for url in urls}
    for url in urls:  # all three only noisy: packed
        writer.add(run, page(url, first[url], 1))
    writer.flush()
    again = {urls[0]: market_page(price=99), urls[1]: market_page()}  # a change; noise
    for url, body in again.items():
        writer.add(run, page(url, body, 2))
    writer.flush()
    assert [p["url"] for p in db.pages.find({"run": run.run_id})] == [urls[0]]
    (pack,) = db.page_packs.find({"run": run.run_id})  # the second flush added to the first's
    assert pack["pages"] == 3  # urls[1] once: its latest record replaced the first
    latest = {**first, **again}
    records = list(run_pages(db, run.run_id, ("url", "sha256", "fetched_at")))
    assert [r["url"] for r in records] == urls
    for record in records:
        assert record["sha256"] == hashlib.sha256(latest[record["url"]]).hexdigest()
    assert [r["fetched_at"] for r in records] == [T0 + timedelta(days=d) for d in (2, 2, 1)]
    for url in urls:
        found = run_page(db, run.run_id, url, ("sha256",))
        assert found is not None and found["sha256"] == hashlib.sha256(latest[url]).hexdigest()
    assert run_page(db, run.run_id, "http://m.onion/listing/none", ("sha256",)) is None
    assert list(run_pages(db, run.run_id, ("url",), having="error")) == []


def test_packs_fill_across_flushes_and_a_retried_flush_adds_no_copy(
    archive: Archive, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = [f"http://m.onion/listing/{i:03}" for i in range(PACK_PAGES + 20)]
    crawl(archive, {url: market_page() for url in urls}, 0)
    writer = PageWriter(db)
    run = archive.open_run("mkt", parser_version="p1", started_at=T0, config={"volatile": REGIONS})
    fails = iter([True])

    def heads_once_down() -> None:  # the packs are written, then the flush fails
        if next(fails, False):
            raise OSError("database went away")

    monkeypatch.setattr(writer, "_move_heads", heads_once_down)
    for start in range(0, len(urls), 10):  # a flush every ten pages, as a busy crawl does
        for url in urls[start : start + 10]:
            writer.add(run, page(url, market_page(), 1))
        try:
            writer.flush()
        except OSError:
            writer.flush()  # the writer thread's retry: the same queued pages again
    # The first pack closed with the flush that took it to PACK_PAGES (70 = 7 flushes).
    sizes = sorted(p["pages"] for p in db.page_packs.find({"run": run.run_id}))
    assert sizes == [len(urls) - 70, 70]
    assert [r["url"] for r in run_pages(db, run.run_id)] == urls
    assert db.pages.count_documents({"run": run.run_id}) == 0


def test_without_declared_regions_every_noisy_page_is_a_change(
    archive: Archive, db: Database
) -> None:
    url = "http://m.onion/listing/1"
    first, second = market_page(), market_page()
    crawl(archive, {url: first}, 0, volatile=False)
    crawl(archive, {url: second}, 1, volatile=False)
    head = db.body_heads.find_one({"source": "mkt"})
    assert head["sha256"] == hashlib.sha256(second).hexdigest()
    assert db.bodies.find_one({"_id": head["sha256"]})["compression"] == FULL


def test_demo_sources_declare_the_noise_block() -> None:
    for source in ("demo", "demo-onion", "classic", "grid", "shop", "rynok", "bazaar"):
        assert [r.as_config() for r in load_source(source).volatile] == REGIONS


@pytest.mark.parametrize(
    ("volatile", "message"),
    [
        (["p.price::text"], "selects elements, not ::text"),
        (["[[["], "not a valid CSS selector"),
        ([{"xpath": "//footer["}], "not a valid XPath"),
        ([{"css": "a", "xpath": "//a"}], "exactly one of css or xpath"),
        ("footer", "valid list"),
    ],
)
def test_a_bad_volatile_key_is_refused_with_file_and_key(
    tmp_path: Path, volatile: object, message: str
) -> None:
    data = yaml.safe_load(load_source("demo").model_dump_json())
    data["volatile"] = volatile
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(SourceConfigError) as caught:
        load_source("demo", tmp_path)
    assert str(path) in str(caught.value)
    assert "volatile" in str(caught.value)
    assert message in str(caught.value)
