"""Page records and raw bodies, stored once each, content-addressed and compressed."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

import zstandard
from bson.binary import Binary
from pymongo import InsertOne, ReplaceOne

from pipelines.store.codec import sha256_text, utc_ms
from pipelines.store.schema import BODIES, PAGES
from pipelines.store.writes import bulk_ignoring_duplicates

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


class PageWriter:
    """Buffers page records and bodies and writes them in unordered bulks.

    One insert costs 6-10 ms on secantusdb once a collection holds ~10,000 documents, while
    a bulk insert runs at thousands of documents a second (notes/mongodb-store.md). The
    archive flushes before it writes anything that cites a page (versions, feedback) and
    when the run closes, so provenance never points at a page that is not stored.
    """

    def __init__(self, db: Database, flush_every: int = 200, max_age: float = 1.0) -> None:
        self.db = db
        self.flush_every = flush_every
        # A crawler killed outright loses at most this many seconds of fetched pages (a
        # resume fetches them again); everything older is in the archive.
        self.max_age = max_age
        self._bodies: dict[str, dict[str, Any]] = {}
        self._pages: dict[str, dict[str, Any]] = {}
        self._oldest = 0.0

    def add(self, run: RunRef, page: PageRecord) -> str | None:
        """Queue one fetched response (and its body); returns the body's sha256."""
        digest = self._add_body(page.body) if page.body is not None else None
        doc_id = page_id(run.run_id, page.url)
        self._pages[doc_id] = {
            "_id": doc_id,
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
            "redirected_from": list(page.redirected_from),
        }
        if len(self._pages) == 1:
            self._oldest = time.monotonic()
        if len(self._pages) >= self.flush_every or time.monotonic() - self._oldest >= self.max_age:
            self.flush()
        return digest

    def _add_body(self, body: bytes) -> str:
        digest = hashlib.sha256(body).hexdigest()
        if digest in self._bodies:
            return digest
        data = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
        if len(data) > MAX_COMPRESSED:
            raise ValueError(f"body {digest} compresses to {len(data)} bytes, over the limit")
        self._bodies[digest] = {
            "_id": digest,
            "data": Binary(data),
            "size": len(body),
            "stored_size": len(data),
            "compression": "zstd",
        }
        return digest

    def flush(self) -> None:
        """Write what is queued. A body already stored (same bytes) is a duplicate to skip; a
        page already stored is a replay of the same run and URL: the latest fetch wins."""
        bodies, pages = list(self._bodies.values()), list(self._pages.values())
        bulk_ignoring_duplicates(self.db[BODIES], [InsertOne(b) for b in bodies])
        _, replayed = bulk_ignoring_duplicates(self.db[PAGES], [InsertOne(p) for p in pages])
        if replayed:
            self.db[PAGES].bulk_write(
                [ReplaceOne({"_id": pages[i]["_id"]}, pages[i]) for i in sorted(replayed)],
                ordered=False,
            )
        # Cleared only once written: after a failure, `queued_urls` says what is missing.
        self._bodies.clear()
        self._pages.clear()

    def queued_urls(self) -> list[str]:
        return [page["url"] for page in self._pages.values()]


def load_body(db: Database, sha256: str) -> bytes:
    """Decompressed raw body by its sha256 (for reparse and audit)."""
    doc = db[BODIES].find_one({"_id": sha256})
    if doc is None:
        raise KeyError(f"no body {sha256} in the archive")
    if doc.get("compression") != "zstd":
        raise ValueError(f"body {sha256} has unknown compression {doc.get('compression')!r}")
    return zstandard.ZstdDecompressor().decompress(bytes(doc["data"]), max_output_size=doc["size"])
