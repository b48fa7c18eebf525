"""Page records and raw bodies, stored once each, content-addressed and compressed."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from bson.binary import Binary
from pymongo import InsertOne, ReplaceOne, UpdateOne

from pipelines.store.bodies import (
    DELTA,
    FULL,
    MAX_COMPRESSED,
    ZSTD_LEVEL,
    BodyCorrupt,
    compress_delta,
    full_document,
    full_every_from_env,
    load_bodies,
    load_body,
    stored_body,
)
from pipelines.store.codec import sha256_text, to_bson, utc_ms
from pipelines.store.model import RunRef
from pipelines.store.page_packs import PACK_PAGES, pack_document, packed_page
from pipelines.store.schema import BODIES, BODY_HEADS, PAGE_PACKS, PAGES, RUNS
from pipelines.store.volatile import content_digest, region_key
from pipelines.store.writes import bulk_ignoring_duplicates

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pymongo.database import Database

    from pipelines.store.model import PageRecord

logger = logging.getLogger(__name__)

__all__ = ["MAX_COMPRESSED", "ZSTD_LEVEL", "PageWriter", "load_bodies", "load_body"]

# Runs whose open pack a writer keeps (a scheduler's writer outlives many runs).
OPEN_PACKS = 4

# Headers that carry session secrets: the archive is shared with researchers, never store them.
SECRET_HEADERS = frozenset({"set-cookie", "cookie", "authorization", "proxy-authorization"})


def page_id(run_id: str, url: str) -> str:
    """Deterministic page id, so a replayed response overwrites instead of duplicating."""
    return f"{run_id}:{sha256_text(url)[:32]}"


def head_id(source: str, url: str) -> str:
    """The `body_heads` id of a URL of a source: which body is its newest."""
    return f"{source}:{sha256_text(url)[:32]}"


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

    A new body is stored whole; the URL's previous body is then re-encoded as a delta
    against it (pipelines/store/bodies.py), with a full copy kept every `full_every`
    versions. Which body is a URL's newest is kept in `body_heads`, read once per source.

    A source that declares volatile regions (recorded in its run's `config.volatile`) also
    has each body's content digest taken without them (pipelines/store/volatile.py), kept
    on the URL's head. A page whose digest equals its head's changed only in those
    regions: its body is stored as a delta against the head (tens of bytes), and the head,
    still stored whole, stays the URL's newest for the next crawl. Such a page and its
    delta go into the run's page pack (pipelines/store/page_packs.py), not into `pages`
    and `bodies`: on a re-crawl of an unchanged market that is nearly every page.
    """

    def __init__(
        self,
        db: Database,
        flush_every: int = 200,
        max_age: float = 1.0,
        full_every: int | None = None,
    ) -> None:
        self.db = db
        self.flush_every = flush_every
        # A crawler killed outright loses at most this many seconds of fetched pages (a
        # resume fetches them again); everything older is in the archive.
        self.max_age = max_age
        self.full_every = full_every if full_every is not None else full_every_from_env()
        self._bodies: dict[str, dict[str, Any]] = {}
        self._raw: dict[str, bytes] = {}  # new bodies, until the previous ones are re-encoded
        self._newest: dict[str, tuple[str, str]] = {}  # head id -> (source, sha256)
        self._pages: dict[str, dict[str, Any]] = {}
        self._heads: dict[str, dict[str, str]] = {}  # source -> head id -> sha256 stored
        self._head_digests: dict[str, dict[str, str]] = {}  # source -> head id -> digest
        self._digests: dict[str, str] = {}  # head id -> content digest of its new body
        self._packed: dict[str, dict[str, Any]] = {}  # sha256 -> its delta, packed with its page
        # run id -> (pack id, its pages by id): the pack this writer adds a run's next pages to
        self._open_packs: dict[str, tuple[str, dict[str, tuple[str, str, bytes]]]] = {}
        self._token, self._packs_opened = secrets.token_hex(4), 0
        self._regions: dict[str, tuple[str, ...]] = {}  # run id -> XPaths of volatile regions
        self._oldest = 0.0

    def add(self, run: RunRef, page: PageRecord) -> str | None:
        """Queue one fetched response (and its body); returns the body's sha256."""
        digest = None
        if page.body is not None:
            digest = self._add_body(page.body)
            hid = head_id(run.source, page.url)
            self._newest[hid] = (run.source, digest)
            regions = self._regions_of(run)
            content = content_digest(page.body, regions) if regions else None
            if content is not None:
                self._digests[hid] = content
        doc_id = page_id(run.run_id, page.url)
        record: dict[str, Any] = {
            "_id": doc_id,
            "run": run.run_id,
            "source": run.source,
            "seq": run.seq,
            "url": page.url,
            "status": page.status,
            "fetched_at": utc_ms(page.fetched_at),
            "state": page.state,
            "kind": page.kind,
            "sha256": digest,
            "size": len(page.body) if page.body is not None else None,
            "headers": clean_headers(page.headers),
        }
        # Written only when there is one (readers `.get` them): a page of every run, so
        # `"error": null, "redirected_from": []` was 29 of its ~500 bytes on most pages.
        if page.server_date:
            record["server_date"] = utc_ms(page.server_date)
        if page.error is not None:
            record["error"] = page.error
        if page.redirected_from:
            record["redirected_from"] = list(page.redirected_from)
        if page.displayed:  # pipelines/store/displayed.py
            record["displayed"] = to_bson([dict(d) for d in page.displayed])
        self._pages[doc_id] = record
        if len(self._pages) == 1:
            self._oldest = time.monotonic()
        if len(self._pages) >= self.flush_every or time.monotonic() - self._oldest >= self.max_age:
            self.flush()
        return digest

    def _add_body(self, body: bytes) -> str:
        digest = hashlib.sha256(body).hexdigest()
        if digest not in self._bodies:
            self._bodies[digest] = full_document(digest, body)
            if self.full_every > 1:
                self._raw[digest] = body
        return digest

    def flush(self) -> None:
        """Write what is queued. A body already stored (same bytes) is a duplicate to skip; a
        page already stored is a replay of the same run and URL: the latest fetch wins.

        Order: new bodies (whole), then the previous bodies re-encoded against them, then
        pages, then packs, then heads. A crash between any two leaves every page readable;
        at worst a previous body stays whole.
        """
        self._unchanged_as_deltas()
        moves = self._head_moves()
        previous = self._previous_full(moves)
        for sha, prev in previous.items():
            new = self._bodies[moves[sha][1]]
            new["chained"] = max(new["chained"], prev.get("chained", 0) + 1)
        bodies = list(self._bodies.values())
        pages = [p for p in self._pages.values() if p["sha256"] not in self._packed]
        _, stored = bulk_ignoring_duplicates(self.db[BODIES], [InsertOne(b) for b in bodies])
        inserted = {b["_id"] for i, b in enumerate(bodies) if i not in stored}
        self._reencode(previous, moves, inserted)
        _, replayed = bulk_ignoring_duplicates(self.db[PAGES], [InsertOne(p) for p in pages])
        if replayed:
            self.db[PAGES].bulk_write(
                [ReplaceOne({"_id": pages[i]["_id"]}, pages[i]) for i in sorted(replayed)],
                ordered=False,
            )
        self._write_packs()
        self._move_heads()
        # Cleared only once written: after a failure, `queued_urls` says what is missing.
        self._bodies.clear()
        self._raw.clear()
        self._newest.clear()
        self._digests.clear()
        self._pages.clear()
        self._packed.clear()

    def _write_packs(self) -> None:
        """The queued pages whose body is a noise-only delta, added to their run's open pack
        (its bases, the heads, are stored whole already: every packed page reads back)."""
        new: dict[str, dict[str, tuple[str, str, bytes]]] = {}
        runs: dict[str, RunRef] = {}
        for page in self._pages.values():
            delta = self._packed.get(page["sha256"])
            if delta is not None:
                new.setdefault(page["run"], {})[page["_id"]] = packed_page({**page, "body": delta})
                runs[page["run"]] = RunRef(page["run"], page["source"], page["seq"])
        if not new:
            return
        opened: dict[str, tuple[str, dict[str, tuple[str, str, bytes]]]] = {}
        for run_id, pages in new.items():
            pack_id, held = self._open_packs.get(run_id) or (self._new_pack_id(run_id), {})
            # A page given again (a retried flush, a replay) is kept once: its last record.
            opened[run_id] = (pack_id, {**held, **pages})
        docs = [pack_document(pid, runs[r], pages.values()) for r, (pid, pages) in opened.items()]
        self.db[PAGE_PACKS].bulk_write(
            [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs], ordered=False
        )
        for run_id, (pack_id, pages) in opened.items():  # only once written
            self._open_packs.pop(run_id, None)
            if len(pages) < PACK_PAGES:
                self._open_packs[run_id] = (pack_id, pages)
        while len(self._open_packs) > OPEN_PACKS:  # runs long closed
            del self._open_packs[next(iter(self._open_packs))]

    def _new_pack_id(self, run_id: str) -> str:
        """Unique to this writer: a pack another process opened is never written over."""
        self._packs_opened += 1
        return f"{run_id}:{self._token}:{self._packs_opened}"

    def _regions_of(self, run: RunRef) -> tuple[str, ...]:
        """The volatile regions the run recorded (its source's `volatile:`), read once."""
        if run.run_id not in self._regions:
            doc = self.db[RUNS].find_one({"_id": run.run_id}, {"config.volatile": 1}) or {}
            declared = (doc.get("config") or {}).get("volatile") or []
            self._regions[run.run_id] = region_key(declared)
        return self._regions[run.run_id]

    def _heads_of(self, source: str) -> dict[str, str]:
        if source not in self._heads:
            found = self.db[BODY_HEADS].find({"source": source}, {"sha256": 1, "content": 1})
            self._heads[source], self._head_digests[source] = {}, {}
            for doc in found:
                self._heads[source][doc["_id"]] = doc["sha256"]
                if doc.get("content"):
                    self._head_digests[source][doc["_id"]] = doc["content"]
        return self._heads[source]

    def _unchanged_as_deltas(self) -> None:
        """New bodies whose content digest equals their URL's head's: each stored as a delta
        against the head (which stays whole and stays the head), not as a new whole body;
        packed with its page, unless two queued pages share those bytes.

        The head's `chained` becomes at least 1, as a delta now ends at it, so the bound on
        a rebuild (`full_every` documents) still holds once the head is re-encoded itself.
        """
        same: dict[str, tuple[str, str]] = {}  # new sha256 -> (head id, head sha256)
        for hid, (source, sha) in self._newest.items():
            head = self._heads_of(source).get(hid)
            content = self._digests.get(hid)
            if (
                head
                and head != sha
                and content is not None
                and self._head_digests[source].get(hid) == content
                and sha in self._raw
            ):
                same.setdefault(sha, (hid, head))
        if not same:
            return
        try:
            bases = load_bodies(self.db, {head for _, head in same.values()})
        except BodyCorrupt as exc:  # never lose a page over it: store them as changes
            logger.error("%s; the new bodies of its batch are stored whole", exc)
            return
        pages_of = Counter(p["sha256"] for p in self._pages.values())
        for sha, (hid, head) in same.items():
            base = bases.get(head)
            if base is None:
                continue  # the head's body is gone: store this one whole, as a change
            whole = self._bodies[sha]
            data = compress_delta(self._raw[sha], base)
            if len(data) >= whole["stored_size"]:
                continue
            delta = {"data": Binary(data), "compression": DELTA, "base": head}
            if pages_of[sha] == 1:  # packed with its page (page_packs.py)
                self._packed[sha] = delta
                del self._bodies[sha]
            else:  # bytes that two pages share: a body document both records cite
                self._bodies[sha] = {
                    "_id": sha,
                    **delta,
                    "size": whole["size"],
                    "stored_size": len(data),
                }
            del self._raw[sha]  # neither a head nor a base: nothing re-encodes against it
            del self._newest[hid]  # the head stays the URL's newest
        self.db[BODIES].update_many(
            {
                "_id": {"$in": sorted({head for _, head in same.values()})},
                "compression": FULL,
                "chained": {"$in": [0, None]},
            },
            {"$set": {"chained": 1}},
        )

    def _head_moves(self) -> dict[str, tuple[str, str]]:
        """Previous body sha256 -> (head id, new body sha256), for new bodies of known URLs."""
        if self.full_every <= 1:
            return {}
        moves: dict[str, tuple[str, str]] = {}
        for hid, (source, sha) in self._newest.items():
            before = self._heads_of(source).get(hid)
            if before and before != sha and sha in self._raw and before not in self._bodies:
                moves.setdefault(before, (hid, sha))  # a body shared by URLs moves once
        return moves

    def _previous_full(self, moves: Mapping[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
        """The previous bodies still stored whole with room for one more delta in front."""
        if not moves:
            return {}
        found = self.db[BODIES].find(
            {"_id": {"$in": sorted(moves)}, "compression": FULL},
        )
        limit = self.full_every - 1
        return {d["_id"]: d for d in found if d.get("chained", 0) < limit}

    def _reencode(
        self,
        previous: Mapping[str, dict[str, Any]],
        moves: Mapping[str, tuple[str, str]],
        inserted: set[str],
    ) -> None:
        """Each previous body as a delta against its URL's new body, written just now."""
        ops = []
        for sha, doc in previous.items():
            base = moves[sha][1]
            if base not in inserted:
                continue  # stored before (a replay, or a body seen elsewhere): leave it whole
            try:
                data = compress_delta(stored_body(doc), self._raw[base])
            except BodyCorrupt as exc:
                logger.error("%s; it is left as it is", exc)
                continue
            if len(data) >= len(doc["data"]):
                continue
            guard = {"_id": sha, "compression": FULL}
            guard["chained"] = doc.get("chained", {"$exists": False})
            delta = {"compression": DELTA, "base": base, "data": Binary(data)}
            ops.append(
                UpdateOne(
                    guard, {"$set": {**delta, "stored_size": len(data)}, "$unset": {"chained": ""}}
                )
            )
        if ops:
            self.db[BODIES].bulk_write(ops, ordered=False)

    def _move_heads(self) -> None:
        if self.full_every <= 1:
            return  # no deltas: nothing needs to know a URL's newest body
        moved = [
            (hid, source, sha, self._digests.get(hid))
            for hid, (source, sha) in self._newest.items()
            if self._heads_of(source).get(hid) != sha
        ]
        if not moved:
            return
        self.db[BODY_HEADS].bulk_write(
            [
                UpdateOne(
                    {"_id": hid},
                    {"$set": {"source": source, "sha256": sha, "content": content}},
                    upsert=True,
                )
                for hid, source, sha, content in moved
            ],
            ordered=False,
        )
        for hid, source, sha, content in moved:
            self._heads[source][hid] = sha
            if content is not None:
                self._head_digests[source][hid] = content
            else:
                self._head_digests[source].pop(hid, None)

    def queued_urls(self) -> list[str]:
        return [page["url"] for page in self._pages.values()]
