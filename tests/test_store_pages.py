"""Page records and content-addressed, compressed bodies."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipelines.store.model import PageRecord
from pipelines.store.queries import load_body
from pipelines.store.schema import ensure_indexes

if TYPE_CHECKING:
    from pymongo.database import Database

    from pipelines.store.archive import Archive

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
BODY = b"<html><body>" + b"<div class='listing'>Some product 10 g</div>" * 500 + b"</body></html>"


def page(url: str, body: bytes | None = BODY, state: str = "listing") -> PageRecord:
    return PageRecord(
        url=url,
        status=200,
        fetched_at=T0,
        state=state,
        kind="listing",
        body=body,
        headers={"Content-Type": "text/html", "Set-Cookie": "session=secret", "Cookie": "s=1"},
        server_date=T0,
    )


def test_body_compressed_deduplicated_and_restored(archive: Archive, db: Database) -> None:
    run = archive.open_run("mkt", parser_version="p1", started_at=T0)
    digest = archive.store_page(run, page("http://m.onion/a"))
    assert digest == hashlib.sha256(BODY).hexdigest()
    assert archive.store_page(run, page("http://m.onion/b")) == digest
    archive.flush()
    assert archive.store_page(run, page("http://m.onion/c")) == digest  # stored already
    archive.flush()
    assert db.bodies.count_documents({}) == 1
    assert db.pages.count_documents({}) == 3
    stored = db.bodies.find_one({"_id": digest})
    assert stored["compression"] == "zstd"
    assert stored["size"] == len(BODY)
    assert len(stored["data"]) < len(BODY) / 5
    assert load_body(db, digest) == BODY


def test_page_record_fields_and_replay(archive: Archive, db: Database) -> None:
    run = archive.open_run("mkt", parser_version="p1", started_at=T0)
    archive.store_page(run, page("http://m.onion/a"))
    archive.store_page(run, page("http://m.onion/a"))  # replayed before the flush
    archive.flush()
    archive.store_page(run, page("http://m.onion/a", state="other"))  # and after it
    archive.flush()
    assert db.pages.count_documents({}) == 1
    record = db.pages.find_one({})
    assert record["state"] == "other", "the latest fetch of a URL in a run wins"
    assert record["run"] == run.run_id
    assert record["source"] == "mkt"
    assert record["sha256"] == hashlib.sha256(BODY).hexdigest()
    assert record["size"] == len(BODY)
    assert record["fetched_at"] == T0.replace(microsecond=123000)
    assert record["headers"] == {"content-type": "text/html"}
    assert "secret" not in str(record)


def test_redirect_chain_is_kept(archive: Archive, db: Database) -> None:
    run = archive.open_run("mkt", parser_version="p1", started_at=T0)
    record = page("http://m.onion/login", body=None, state="login_wall")
    asked = ("http://m.onion/l/1",)
    archive.store_page(run, dataclasses.replace(record, redirected_from=asked))
    archive.flush()
    assert db.pages.find_one({})["redirected_from"] == list(asked)


def test_challenge_page_without_body(archive: Archive, db: Database) -> None:
    run = archive.open_run("mkt", parser_version="p1", started_at=T0)
    assert archive.store_page(run, page("http://m.onion/q", body=None, state="queue")) is None
    archive.flush()
    record = db.pages.find_one({})
    assert (record["state"], record["sha256"], record["size"]) == ("queue", None, None)
    assert db.bodies.count_documents({}) == 0


def test_pages_indexed_by_run_and_url_only(archive: Archive, db: Database) -> None:
    keys = [tuple(ix["key"]) for ix in db.pages.list_indexes()]
    assert ("run", "url") in keys  # every read of pages: a run's, by URL (replay, export, ...)
    assert ("source", "fetched_at") not in keys  # nothing reads pages by date


def test_indexes_of_an_older_archive_renamed_and_retired(db: Database) -> None:
    """Default-named indexes (`source_1_key_1_v_1`) are rebuilt under the short names, and
    the retired (source, fetched_at) index of pages is dropped; other indexes stay."""
    db.listing_versions.create_index([("source", 1), ("key", 1), ("v", 1)])
    db.pages.create_index([("source", 1), ("fetched_at", 1)])
    db.pages.create_index([("state", 1)], name="a_teams_own")
    ensure_indexes(db)
    ensure_indexes(db)  # idempotent
    names = {ix["name"]: tuple(ix["key"]) for ix in db.listing_versions.list_indexes()}
    assert names["key_v"] == ("source", "key", "v")
    assert "source_1_key_1_v_1" not in names
    assert {ix["name"] for ix in db.pages.list_indexes()} == {"_id_", "run_url", "a_teams_own"}


def test_body_heads_indexed_by_source(archive: Archive, db: Database) -> None:
    keys = [tuple(ix["key"]) for ix in db.body_heads.list_indexes()]
    assert ("source",) in keys, "a crawl reads its source's newest bodies in one indexed scan"
