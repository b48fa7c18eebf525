"""Page records and raw bodies, stored once each, content-addressed and compressed."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import TYPE_CHECKING, Any

import zstandard
from bson.binary import Binary
from pymongo.errors import DuplicateKeyError

from pipelines.store.codec import sha256_text, utc_ms
from pipelines.store.schema import BODIES, PAGES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pymongo.database import Database

    from pipelines.store.model import PageRecord, RunRef

logger = logging.getLogger(__name__)

# Headers that carry session secrets: the archive is shared with researchers, never store them.
SECRET_HEADERS = frozenset({"set-cookie", "cookie", "authorization", "proxy-authorization"})
# Keep a body document well under MongoDB's 16 MB limit.
MAX_COMPRESSED = 15 * 1024 * 1024
ZSTD_LEVEL = 10


def page_id(run_id: str, url: str) -> str:
    """Deterministic page id, so a replayed response overwrites instead of duplicating."""
    return f"{run_id}:{sha256_text(url)[:32]}"


def clean_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased headers without cookies or credentials."""
    return {
        k.lower(): str(v)
        for k, v in headers.items()
        if k.lower() not in SECRET_HEADERS and "." not in k and not k.startswith("$")
    }


def store_body(db: Database, body: bytes) -> str:
    """Store a raw body once under its sha256; return the hash."""
    digest = hashlib.sha256(body).hexdigest()
    if db[BODIES].find_one({"_id": digest}, {"_id": 1}) is not None:
        return digest
    data = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    if len(data) > MAX_COMPRESSED:
        raise ValueError(f"body {digest} compresses to {len(data)} bytes, over the document limit")
    # A duplicate means another crawler stored the same bytes first.
    with contextlib.suppress(DuplicateKeyError):
        db[BODIES].insert_one(
            {
                "_id": digest,
                "data": Binary(data),
                "size": len(body),
                "stored_size": len(data),
                "compression": "zstd",
            }
        )
    return digest


def store_page(db: Database, run: RunRef, page: PageRecord) -> str | None:
    """Record one fetched response (and its body); returns the body's sha256."""
    digest = store_body(db, page.body) if page.body is not None else None
    doc: dict[str, Any] = {
        "run": run.run_id,
        "source": run.source,
        "seq": run.seq,
        "url": page.url,
        "status": page.status,
        "fetched_at": utc_ms(page.fetched_at),
        "server_date": utc_ms(page.server_date) if page.server_date else None,
        "state": page.state,
        "kind": page.kind,
        "sha256": digest,
        "size": len(page.body) if page.body is not None else None,
        "headers": clean_headers(page.headers),
        "error": page.error,
    }
    doc_id = page_id(run.run_id, page.url)
    # insert, and replace only on a replay: an upserting replace costs ~12 ms per page on
    # secantusdb (measured at 8,000 pages) against ~1.5 ms for an insert.
    try:
        db[PAGES].insert_one({"_id": doc_id, **doc})
    except DuplicateKeyError:
        db[PAGES].replace_one({"_id": doc_id}, doc)
    return digest


def load_body(db: Database, sha256: str) -> bytes:
    """Decompressed raw body by its sha256 (for reparse and audit)."""
    doc = db[BODIES].find_one({"_id": sha256})
    if doc is None:
        raise KeyError(f"no body {sha256} in the archive")
    if doc.get("compression") != "zstd":
        raise ValueError(f"body {sha256} has unknown compression {doc.get('compression')!r}")
    return zstandard.ZstdDecompressor().decompress(bytes(doc["data"]), max_output_size=doc["size"])
