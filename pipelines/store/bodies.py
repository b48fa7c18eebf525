"""Page bodies as zstd deltas between versions of one URL, rebuilt and checked by SHA-256.

A market page changes little from one crawl to the next, so a body compressed with the
same URL's other version as a zstd dictionary is tens of times smaller than on its own.
Deltas run backwards in time (as in RCS): the newest body of a URL is stored whole, and
when a newer one arrives the previous one is re-encoded against it. Writing costs one read
of the previous body (never a chain), the latest version of a page is one step away, and a
delta only ever names a base that is already stored (the new body is written before the
previous one is re-encoded). A full copy is kept after every `full_every - 1` deltas
(`chained` on a full copy counts the longest chain of deltas that ends at it), so any body
is rebuilt from at most `full_every` documents. Every body rebuilt is checked against its
SHA-256, which is its `_id`; bodies stored whole by older versions read as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import TYPE_CHECKING, Any

import zstandard
from bson.binary import Binary

from pipelines.store.page_packs import packed_bodies
from pipelines.store.schema import BODIES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pymongo.database import Database

logger = logging.getLogger(__name__)

FULL = "zstd"  # compressed on its own (every body written before deltas existed, too)
DELTA = "zstd-delta"  # compressed with the body `base` as a raw-content dictionary
ZSTD_LEVEL = 10
# Keep a body document well under MongoDB's 16 MB limit.
MAX_COMPRESSED = 15 * 1024 * 1024
# A full copy at least every this many versions of a URL: a read decodes at most this many.
DEFAULT_FULL_EVERY = 16
FULL_EVERY_ENV = "DARKARCHIVE_BODY_FULL_EVERY"
# More links than this can only be a corrupt archive (a loop of bases), never a chain.
MAX_CHAIN = 1024


class BodyCorrupt(ValueError):
    """A stored body that cannot be rebuilt to the bytes its SHA-256 names."""

    def __init__(self, sha256: str, reason: str) -> None:
        super().__init__(f"page body {sha256} is corrupt: {reason}")
        self.sha256 = sha256


def full_every_from_env() -> int:
    """`DARKARCHIVE_BODY_FULL_EVERY` (default 16); 1 stores every body whole."""
    raw = os.environ.get(FULL_EVERY_ENV, "")
    try:
        value = int(raw) if raw.strip() else DEFAULT_FULL_EVERY
    except ValueError:
        raise ValueError(f"{FULL_EVERY_ENV} must be a whole number >= 1, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{FULL_EVERY_ENV} must be a whole number >= 1, not {raw!r}")
    return value


def _dictionary(base: bytes) -> zstandard.ZstdCompressionDict:
    return zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def compress_full(body: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)


def compress_delta(body: bytes, base: bytes) -> bytes:
    """`body` compressed with `base` as its dictionary (both must be kept to read it)."""
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, dict_data=_dictionary(base))
    return compressor.compress(body)


def full_document(digest: str, body: bytes, chained: int = 0) -> dict[str, Any]:
    """The document of a body stored whole (the newest version of its URL)."""
    data = compress_full(body)
    if len(data) > MAX_COMPRESSED:
        raise ValueError(f"body {digest} compresses to {len(data)} bytes, over the limit")
    return {
        "_id": digest,
        "data": Binary(data),
        "size": len(body),
        "stored_size": len(data),
        "compression": FULL,
        "chained": chained,
    }


def _decode(doc: dict[str, Any], base: bytes | None) -> bytes:
    sha, size = doc["_id"], doc.get("size")
    try:
        if doc.get("compression") == FULL:
            body = zstandard.ZstdDecompressor().decompress(
                bytes(doc["data"]), max_output_size=size or 0
            )
        elif doc.get("compression") == DELTA and base is not None:
            body = zstandard.ZstdDecompressor(dict_data=_dictionary(base)).decompress(
                bytes(doc["data"]), max_output_size=size or 0
            )
        else:
            raise BodyCorrupt(sha, f"unknown compression {doc.get('compression')!r}")
    except zstandard.ZstdError as exc:
        where = f" (delta against {doc.get('base')})" if doc.get("base") else ""
        raise BodyCorrupt(sha, f"zstd could not decompress it{where}: {exc}") from exc
    if hashlib.sha256(body).hexdigest() != sha:
        where = f" (delta against {doc.get('base')})" if doc.get("base") else ""
        raise BodyCorrupt(sha, f"rebuilt bytes do not match its SHA-256{where}")
    return body


def _fetch_chains(
    db: Database, shas: Iterable[str], docs: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`docs` with the documents of `shas` and of every base they need, one query per
    chain level. A body asked for may be absent; a base that a delta names may not."""
    wanted, bases = set(shas) - docs.keys(), _bases(docs.values()) - docs.keys()
    for _ in range(MAX_CHAIN):
        if not wanted and not bases:
            return docs
        ids = sorted(wanted | bases)
        found = {d["_id"]: d for d in db[BODIES].find({"_id": {"$in": ids}})}
        if missing := bases - found.keys():
            sha = sorted(missing)[0]
            raise BodyCorrupt(sha, "it is the base of a stored delta but is not in the archive")
        docs.update(found)
        wanted, bases = set(), _bases(found.values()) - docs.keys()
    raise BodyCorrupt(sorted(bases)[0], f"its chain of deltas is longer than {MAX_CHAIN}")


def _bases(docs: Iterable[dict[str, Any]]) -> set[str]:
    return {d["base"] for d in docs if d.get("compression") == DELTA}


def _rebuild(sha: str, docs: dict[str, dict[str, Any]]) -> bytes:
    chain = [docs[sha]]
    while chain[-1].get("compression") == DELTA:
        base = chain[-1].get("base")
        if base not in docs:
            raise BodyCorrupt(chain[-1]["_id"], f"its base {base} is not in the archive")
        if len(chain) > MAX_CHAIN:
            raise BodyCorrupt(sha, f"its chain of deltas is longer than {MAX_CHAIN}")
        chain.append(docs[base])
    body: bytes | None = None
    for doc in reversed(chain):  # the full copy first, then each delta on the one before
        body = _decode(doc, body)
    assert body is not None
    return body


def load_bodies(
    db: Database, shas: Iterable[str], known: Iterable[dict[str, Any]] = ()
) -> dict[str, bytes]:
    """Raw bodies by SHA-256, fetched together: one query per level of delta, not per page.

    `known`: body documents the caller holds already (a packed page's, read with its
    record). A body in neither `bodies` nor `known` is looked for in the page packs
    (pipelines/store/page_packs.py). A body not in the archive is left out; one that cannot
    be rebuilt raises `BodyCorrupt`.
    """
    wanted = list(dict.fromkeys(shas))
    docs = _fetch_chains(db, wanted, {d["_id"]: d for d in known})
    if missing := [sha for sha in wanted if sha not in docs]:
        docs = _fetch_chains(db, (), {**docs, **packed_bodies(db, missing)})
    return {sha: _rebuild(sha, docs) for sha in wanted if sha in docs}


def load_body(db: Database, sha256: str) -> bytes:
    """Raw body by its SHA-256 (for resume, reparse, replay and WARC export)."""
    body = load_bodies(db, [sha256]).get(sha256)
    if body is None:
        raise KeyError(f"no body {sha256} in the archive")
    return body


def stored_body(doc: dict[str, Any], base: bytes | None = None) -> bytes:
    """One fetched body document decoded (its base given if it is a delta), SHA-checked."""
    return _decode(doc, base)
