"""Page bodies stored as deltas between versions of a URL, on the real embedded server."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
import zstandard
from bson.binary import Binary
from pymongo.errors import BulkWriteError

from pipelines.store.bodies import (
    DELTA,
    FULL,
    FULL_EVERY_ENV,
    BodyCorrupt,
    full_every_from_env,
    load_bodies,
    load_body,
)
from pipelines.store.model import PageRecord, RunRef
from pipelines.store.pages import PageWriter

if TYPE_CHECKING:
    from pymongo.database import Database

    from pipelines.store.archive import Archive

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
URL = "http://m.onion/listing/1"


def version(n: int, url: str = URL) -> bytes:
    """A listing page as a market renders it on day `n`: mostly the same, a few values move."""
    rng = random.Random(f"{url}:{n}")
    rows = b"".join(b"<tr><td>offer %d</td><td>%d USD</td></tr>" % (i, 10 + i) for i in range(400))
    noise = b"<p>users online: %d, rate %d, seen %d</p>" % (rng.randint(1, 999), n * 7, n)
    return b"<html><body>" + noise + rows + b"<i>" + url.encode() + b"</i></body></html>"


def page(url: str, body: bytes) -> PageRecord:
    return PageRecord(
        url=url, status=200, fetched_at=T0, state="listing", kind="listing", body=body,
        headers={}, server_date=None,
    )  # fmt: skip


def store(writer: PageWriter, run: RunRef, url: str, body: bytes) -> str:
    digest = writer.add(run, page(url, body))
    writer.flush()
    assert digest == hashlib.sha256(body).hexdigest()
    return digest


def chain_length(db: Database, sha: str) -> int:
    """Documents decoded to rebuild `sha` (1 for a body stored whole)."""
    steps, doc = 1, db.bodies.find_one({"_id": sha})
    while doc["compression"] == DELTA:
        steps, doc = steps + 1, db.bodies.find_one({"_id": doc["base"]})
    return steps


@pytest.fixture
def run(archive: Archive) -> RunRef:
    return archive.open_run("mkt", parser_version="p1", started_at=T0)


def test_chain_with_a_full_copy_every_n_versions(db: Database, run: RunRef) -> None:
    writer = PageWriter(db, full_every=4)
    bodies = [version(n) for n in range(1, 11)]
    shas = [store(writer, run, URL, body) for body in bodies]
    docs = {d["_id"]: d for d in db.bodies.find()}
    assert len(docs) == 10
    assert docs[shas[-1]]["compression"] == FULL, "the newest version is one step away"
    assert [chain_length(db, sha) for sha in shas] == [4, 3, 2, 1, 4, 3, 2, 1, 2, 1]
    full = [docs[s]["stored_size"] for s in shas if docs[s]["compression"] == FULL]
    deltas = [docs[s]["stored_size"] for s in shas if docs[s]["compression"] == DELTA]
    assert len(full) == 3 and len(deltas) == 7
    assert max(deltas) * 5 < min(full), (deltas, full)
    for sha, body in zip(shas, bodies, strict=True):
        assert load_body(db, sha) == body
    assert load_bodies(db, [*reversed(shas), "0" * 64]) == dict(zip(shas, bodies, strict=True))
    heads = list(db.body_heads.find())
    assert [(h["source"], h["sha256"]) for h in heads] == [("mkt", shas[-1])]


def test_identical_bodies_stored_once_even_when_a_page_goes_back(db: Database, run: RunRef) -> None:
    writer = PageWriter(db, full_every=16)
    a, b = version(1), version(2)
    sha_a = store(writer, run, URL, a)
    assert store(writer, run, "http://m.onion/listing/copy", a) == sha_a
    sha_b = store(writer, run, URL, b)
    assert store(writer, run, URL, a) == sha_a  # back to the first version: no new body
    store(writer, run, URL, version(3))
    assert db.bodies.count_documents({}) == 3
    assert load_body(db, sha_a) == a and load_body(db, sha_b) == b
    assert all(chain_length(db, d["_id"]) <= 3 for d in db.bodies.find())


def test_several_urls_in_one_batch_and_full_every_one(db: Database, run: RunRef) -> None:
    urls = [f"http://m.onion/listing/{i}" for i in range(30)]
    writer = PageWriter(db, flush_every=1000, full_every=16)
    for day in (1, 2):
        for url in urls:
            writer.add(run, page(url, version(day, url)))
        writer.flush()
    assert db.bodies.count_documents({"compression": DELTA}) == 30
    day1 = [hashlib.sha256(version(1, url)).hexdigest() for url in urls]
    assert load_bodies(db, day1) == {s: version(1, u) for s, u in zip(day1, urls, strict=True)}
    whole = PageWriter(db, full_every=1)  # 1: every body stored whole, as before deltas
    for url in urls:
        whole.add(run, page(url, version(3, url)))
    whole.flush()
    assert db.bodies.count_documents({"compression": DELTA}) == 30


def test_corrupt_delta_is_named_never_returned(db: Database, run: RunRef) -> None:
    writer = PageWriter(db, full_every=16)
    old, new = version(1), version(2)
    sha_old, sha_new = store(writer, run, URL, old), store(writer, run, URL, new)
    delta = db.bodies.find_one({"_id": sha_old})
    assert delta["base"] == sha_new
    # Valid zstd, wrong bytes: the same delta read against another base.
    other = zstandard.ZstdCompressionDict(version(9), dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    wrong = zstandard.ZstdCompressor(level=3, dict_data=other).compress(b"<html>x</html>")
    db.bodies.update_one({"_id": sha_old}, {"$set": {"data": Binary(wrong)}})
    with pytest.raises(BodyCorrupt, match=f"page body {sha_old} is corrupt.*SHA-256"):
        load_body(db, sha_old)
    db.bodies.update_one({"_id": sha_old}, {"$set": {"data": Binary(b"not zstd")}})
    with pytest.raises(BodyCorrupt, match=f"{sha_old}.*delta against {sha_new}"):
        load_body(db, sha_old)
    db.bodies.delete_one({"_id": sha_new})
    db.bodies.update_one({"_id": sha_old}, {"$set": {"data": delta["data"]}})
    with pytest.raises(BodyCorrupt, match=f"{sha_new}.*base of a stored delta"):
        load_body(db, sha_old)


def test_old_whole_body_still_read_and_then_chained(db: Database, run: RunRef) -> None:
    old = version(1)
    sha_old = hashlib.sha256(old).hexdigest()
    data = zstandard.ZstdCompressor(level=10).compress(old)
    db.bodies.insert_one(  # as written before deltas: no `chained`, no head
        {"_id": sha_old, "data": Binary(data), "size": len(old), "stored_size": len(data),
         "compression": "zstd"}
    )  # fmt: skip
    assert load_body(db, sha_old) == old
    writer = PageWriter(db, full_every=16)
    store(writer, run, URL, old)  # the crawl sees it again: it is the URL's head now
    sha_new = store(writer, run, URL, version(2))
    assert db.bodies.find_one({"_id": sha_old})["base"] == sha_new
    assert load_body(db, sha_old) == old


def test_stale_writer_cannot_lengthen_a_chain_past_n(db: Database, run: RunRef) -> None:
    first, stale = PageWriter(db, full_every=3), PageWriter(db, full_every=3)
    shas = [store(first, run, URL, version(n)) for n in (1, 2, 3)]  # 1 -> 2 -> 3, 3 whole
    stale._heads_of("mkt")  # another process that saw version 3 as the newest
    shas.append(store(first, run, URL, version(4)))  # 3 is a full copy with 2 deltas on it
    shas.append(store(stale, run, URL, version(5)))  # would chain 1 -> 2 -> 3 -> 5
    for n, sha in enumerate(shas, start=1):
        assert load_body(db, sha) == version(n)
    assert [chain_length(db, sha) for sha in shas] == [3, 2, 1, 1, 1]


def test_a_flush_cut_short_leaves_every_body_readable(db: Database, run: RunRef) -> None:
    writer = PageWriter(db, full_every=16)
    sha_old = store(writer, run, URL, version(1))
    new = version(2)
    too_big = dataclasses.replace(page(URL, new), headers={"x-pad": "x" * (17 * 1024 * 1024)})
    writer.add(run, too_big)  # its page record is refused after its body was written
    with pytest.raises(BulkWriteError):
        writer.flush()
    sha_new = hashlib.sha256(new).hexdigest()
    assert db.bodies.find_one({"_id": sha_old})["base"] == sha_new
    assert load_body(db, sha_old) == version(1) and load_body(db, sha_new) == new
    assert db.body_heads.find_one()["sha256"] == sha_old, "the head moves only once written"


@pytest.mark.parametrize(("value", "expected"), [("", 16), ("4", 4), ("1", 1)])
def test_full_every_setting(monkeypatch: pytest.MonkeyPatch, value: str, expected: int) -> None:
    monkeypatch.setenv(FULL_EVERY_ENV, value)
    assert full_every_from_env() == expected


@pytest.mark.parametrize("value", ["0", "-3", "often"])
def test_full_every_setting_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(FULL_EVERY_ENV, value)
    with pytest.raises(ValueError, match=f"{FULL_EVERY_ENV} must be a whole number >= 1"):
        full_every_from_env()
