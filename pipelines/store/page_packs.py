"""Pages that changed only in their volatile regions, packed many to a document.

Real markets put a token, a clock or a visitor count on every page, so a re-crawl of an
unchanged market fetches new bytes for every page. Those bytes are kept (as a delta of
tens of bytes against the URL's head, pipelines/store/bodies.py), but a page record and
a body document of their own cost ~770 bytes a page on every crawl, index entries apart:
more than the delta they carry. Such pages are packed instead: up to `PACK_PAGES` records
of a run (each with its delta inline) compressed together, where the run, source, header
names and most values repeat. A writer flush adds its pages to the run's open pack, which
is written again whole (a flush may hold only a few pages, and a pack compresses better
the more it holds). Each pack has one `run` index entry and one short `keys` entry per
page, by which a body is still found from its SHA-256 alone.

Readers never read this collection directly: a run's pages come from
pipelines/store/run_pages.py, bodies from `load_bodies`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import bson
import zstandard
from bson.binary import Binary
from bson.int64 import Int64

from pipelines.store.schema import PAGE_PACKS

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from bson.codec_options import CodecOptions
    from pymongo.database import Database

    from pipelines.store.model import RunRef

logger = logging.getLogger(__name__)

# Fields every page of a pack shares (kept once on the pack, put back on each record).
SHARED = ("run", "source", "seq")
# Level 3 (zstd's default): on the demo market's records, 135 bytes a page against 138 at
# level 10, at a quarter of the time (the records hold hashes and deltas, which do not
# compress; what repeats, repeats exactly).
ZSTD_LEVEL = 3
# Pages a pack holds before the next one opens. Measured on the demo market's noisy
# re-crawl: a page takes ~175 bytes in a pack of 9, ~140 in a pack of 50 or more.
PACK_PAGES = 64


def body_key(sha256: str) -> Int64:
    """The `keys` entry of a body: the first 8 bytes of its SHA-256, as a signed integer
    (the smallest index entry SecantusDB keeps: ~46 bytes, against ~59 for 12 bytes)."""
    return Int64(int.from_bytes(bytes.fromhex(sha256)[:8], "big", signed=True))


def packed_page(record: dict[str, Any]) -> tuple[str, str, bytes]:
    """A page record (its body document under `body`) as a pack holds it: its URL, its
    SHA-256 and its BSON without the fields the pack keeps once. Encoded once: the page is
    written again with each flush that adds to its pack."""
    kept = {k: v for k, v in record.items() if k not in SHARED and k != "_id"}
    return record["url"], record["sha256"], bson.encode(kept)


def pack_document(
    pack_id: str, run: RunRef, pages: Iterable[tuple[str, str, bytes]]
) -> dict[str, Any]:
    """One pack of pages (`packed_page`), by URL."""
    ordered = sorted(pages)
    raw = b"".join(encoded for _, _, encoded in ordered)
    return {
        "_id": pack_id,
        "run": run.run_id,
        "source": run.source,
        "seq": run.seq,
        "pages": len(ordered),
        "keys": [body_key(sha) for _, sha, _ in ordered],
        "size": len(raw),
        "data": Binary(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)),
    }


def unpack(pack: dict[str, Any], options: CodecOptions) -> Iterator[dict[str, Any]]:
    """The page records of a pack, by URL, as `pages` holds them but for their `_id`
    (run_pages.py puts it back), each with its body document under `body`."""
    raw = zstandard.ZstdDecompressor().decompress(bytes(pack["data"]), max_output_size=pack["size"])
    for record in bson.decode_all(raw, options):
        record.update({k: pack[k] for k in SHARED})
        body = record.get("body")
        if body is not None:
            body.update({"_id": record["sha256"], "size": record["size"]})
            body["stored_size"] = len(body["data"])
        yield record


def run_packs(db: Database, run_id: str) -> list[Iterator[dict[str, Any]]]:
    """Each pack of a run as an iterator of its records (by URL), decoded when first read."""
    options = db.codec_options
    return [unpack(doc, options) for doc in db[PAGE_PACKS].find({"run": run_id}).sort("_id", 1)]


def packed_bodies(db: Database, shas: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The body documents of these SHA-256s that are stored in packs (one indexed query)."""
    wanted = set(shas)
    if not wanted:
        return {}
    found: dict[str, dict[str, Any]] = {}
    query = {"keys": {"$in": [body_key(sha) for sha in sorted(wanted)]}}
    for pack in db[PAGE_PACKS].find(query):
        for record in unpack(pack, db.codec_options):
            body = record.get("body")
            if body is not None and record["sha256"] in wanted:
                found.setdefault(record["sha256"], body)
    return found
