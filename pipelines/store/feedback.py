"""Buyers' feedback: matched across runs by identity and overlapping date interval."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from pymongo import InsertOne, UpdateOne

from pipelines.store.codec import sha256_text, to_bson, utc_ms
from pipelines.store.schema import FEEDBACK
from pipelines.store.writes import bulk_ignoring_duplicates

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from pymongo.database import Database

    from pipelines.store.model import Provenance, RunRef

logger = logging.getLogger(__name__)

# A sale is worth keeping without a readable rating ("Positive") or a buyer name; never
# without the date interval that tells two of them apart.
REQUIRED = ("text", "buyer", "date_earliest", "date_latest")

Identity = tuple[str, str, str]


def _identity(entry: Mapping[str, Any]) -> Identity:
    rating = entry.get("rating")
    shown = str(rating) if rating is not None else f"text:{entry.get('rating_text') or ''}"
    return (str(entry["buyer"]), shown, str(entry["text"]))


def _interval(entry: Mapping[str, Any]) -> tuple[datetime, datetime]:
    earliest, latest = utc_ms(entry["date_earliest"]), utc_ms(entry["date_latest"])
    if earliest > latest:
        raise ValueError(f"feedback interval ends before it starts: {entry!r}")
    return earliest, latest


def as_of(doc: dict[str, Any], seq: int | None = None) -> dict[str, Any]:
    """The entry as known at run `seq` (None: now): the narrowest interval learned by then.

    The stored `date_earliest`/`date_latest` are what the first run saw and never change;
    each later run that narrowed them appended to `narrowed`, so what run R said about an
    entry is the same bytes however many runs came after (past runs are immutable).
    """
    out = {k: v for k, v in doc.items() if k != "narrowed"}
    out["narrowed_by"] = None
    for step in doc.get("narrowed") or ():
        if seq is None or step["seq"] <= seq:
            out["date_earliest"], out["date_latest"] = step["date_earliest"], step["date_latest"]
            out["narrowed_by"] = step["run"]
    return out


def record_feedback_many(
    db: Database,
    run: RunRef,
    pages_feedback: Sequence[tuple[str, Sequence[Mapping[str, Any]], Provenance]],
) -> int:
    """Add the entries not already archived; return how many were new.

    Studies estimate sales from feedback counts, so an entry must be counted once however
    many runs show it. Markets show dates coarsely ("2 weeks ago"), so the same entry seen
    on two days has two different but overlapping intervals: an incoming entry matches a
    stored one with the same identity and an overlapping interval, and the stored interval
    narrows to the intersection. Identical entries on one page are distinct sales, so
    matching is one-to-one (a multiset), and replaying a page adds nothing.

    `pages_feedback` holds (listing key, entries, provenance) per listing page; the stored
    entries of all those listings are read in one query and written in one bulk.
    """
    for listing_key, entries, _ in pages_feedback:
        for entry in entries:
            missing = [f for f in REQUIRED if entry.get(f) is None]
            if missing:
                raise ValueError(f"feedback entry for {listing_key!r} lacks {missing}: {entry!r}")
    keys = sorted({key for key, _, _ in pages_feedback})
    stored: dict[tuple[str, Identity], list[dict[str, Any]]] = defaultdict(list)
    if keys:
        query = {"source": run.source, "listing_key": {"$in": keys}}
        for doc in db[FEEDBACK].find(query):
            stored[(doc["listing_key"], _identity(doc))].append(as_of(doc))
    ops: list[Any] = []
    narrowed: dict[str, dict[str, Any]] = {}  # one update per entry, its narrowest interval
    new = 0  # what later runs learn is appended as new knowledge, never written over
    for listing_key, entries, provenance in pages_feedback:
        new += _plan(run, listing_key, entries, provenance, stored, ops, narrowed)
    ops.extend(
        UpdateOne(
            {"_id": doc_id},
            {"$push": {"narrowed": {"run": run.run_id, "seq": run.seq, **interval}}},
        )
        for doc_id, interval in narrowed.items()
    )
    _, dups = bulk_ignoring_duplicates(db[FEEDBACK], ops)
    if dups:
        logger.warning("%d feedback entries were already stored", len(dups))
    return new - len(dups)


def _plan(
    run: RunRef,
    listing_key: str,
    entries: Sequence[Mapping[str, Any]],
    provenance: Provenance,
    stored: dict[tuple[str, Identity], list[dict[str, Any]]],
    ops: list[Any],
    narrowed: dict[str, dict[str, Any]],
) -> int:
    """Match one page's entries against the stored ones; queue the writes; count the new.

    Entries planned for insertion join `stored`, so the same page twice in one batch (a
    replay) matches its own first copy instead of adding duplicates.
    """
    incoming: dict[Identity, list[Mapping[str, Any]]] = defaultdict(list)
    for entry in entries:
        incoming[_identity(entry)].append(entry)
    new = 0
    for ident, group in incoming.items():
        candidates = sorted(
            stored.get((listing_key, ident), []), key=lambda d: (d["date_earliest"], d["_id"])
        )
        used: set[str] = set()
        unmatched: list[Mapping[str, Any]] = []
        for entry in sorted(group, key=_interval):
            earliest, latest = _interval(entry)
            match = next(
                (
                    d
                    for d in candidates
                    if d["_id"] not in used
                    and d["date_earliest"] <= latest
                    and earliest <= d["date_latest"]
                ),
                None,
            )
            if match is None:
                unmatched.append(entry)
                continue
            used.add(match["_id"])
            interval = {
                "date_earliest": max(match["date_earliest"], earliest),
                "date_latest": min(match["date_latest"], latest),
            }
            if interval["date_earliest"] != match["date_earliest"] or (
                interval["date_latest"] != match["date_latest"]
            ):
                match.update(interval)
                narrowed[match["_id"]] = interval
        # Occurrence numbers continue after the stored entries of this identity, so a new
        # entry never reuses the id of one already archived.
        for occurrence, entry in enumerate(unmatched, start=len(candidates)):
            doc = _new_doc(run, listing_key, entry, occurrence, provenance)
            ops.append(InsertOne(doc))
            stored[(listing_key, ident)].append(doc)
            new += 1
    return new


def _new_doc(
    run: RunRef,
    listing_key: str,
    entry: Mapping[str, Any],
    occurrence: int,
    provenance: Provenance,
) -> dict[str, Any]:
    earliest, latest = _interval(entry)
    buyer, rating, text = _identity(entry)
    doc_id = sha256_text(
        run.source,
        listing_key,
        buyer,
        rating,
        text,
        earliest.isoformat(),
        latest.isoformat(),
        str(occurrence),
    )
    extra = {k: v for k, v in entry.items() if k not in ("date_earliest", "date_latest")}
    return {
        **to_bson(extra),
        "_id": doc_id,
        "source": run.source,
        "listing_key": listing_key,
        "date_earliest": earliest,
        "date_latest": latest,
        "first_run": run.run_id,
        "first_seq": run.seq,
        "provenance": {
            "run_id": run.run_id,
            "url": provenance.url,
            "page_sha256": provenance.page_sha256,
            "parser_version": provenance.parser_version,
            "fetched_at": utc_ms(provenance.fetched_at),
        },
    }
