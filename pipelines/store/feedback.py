"""Buyers' feedback: matched across runs by identity and overlapping date interval."""

from __future__ import annotations

import logging
from collections import defaultdict, deque
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
Interval = tuple["datetime", "datetime"]
Stored = dict[tuple[str, Identity], list[dict[str, Any]]]


def _identity(entry: Mapping[str, Any]) -> Identity:
    rating = entry.get("rating")
    shown = str(rating) if rating is not None else f"text:{entry.get('rating_text') or ''}"
    return (str(entry["buyer"]), shown, str(entry["text"]))


def _interval(entry: Mapping[str, Any]) -> Interval:
    earliest, latest = utc_ms(entry["date_earliest"]), utc_ms(entry["date_latest"])
    if earliest >= latest:
        raise ValueError(f"feedback interval [earliest, latest) is empty: {entry!r}")
    return earliest, latest


def overlap(a: Interval, b: Interval) -> Interval | None:
    """The intersection of two half-open intervals, or None unless it has positive length.

    Intervals that only touch ([d, d+1) and [d+1, d+2): "1 day ago" read on two days) are
    two moments, never one entry: matching them once narrowed an entry to the empty
    [d+1, d+1), which no later run could match, so every run stored it again.
    """
    start, end = max(a[0], b[0]), min(a[1], b[1])
    return (start, end) if start < end else None


def match_intervals(stored: Sequence[Interval], incoming: Sequence[Interval]) -> dict[int, int]:
    """Pair incoming intervals with stored ones they overlap, one-to-one, as many as can be.

    Both lists are in time order (by earliest, then latest). Entries with one identity
    ("Positive", no text, buyer "b***r") are told apart only by their dates, so the pairing
    must be a maximum matching: an entry paired greedily with the wrong stored one can
    leave another without the partner it truly has, and a sale is counted twice. Each
    incoming interval takes the first free stored one in time order; when none is free
    the earlier pairs shift along an augmenting path (Kuhn's algorithm), so the pairing
    keeps time order wherever the dates allow. Returns {incoming index: stored index}.
    """
    partner_of: dict[int, int] = {}  # stored index -> incoming index
    held: dict[int, int] = {}  # incoming index -> stored index

    def augment(first: int) -> bool:
        """Breadth-first for a free stored interval, then flip the path back to `first`
        (iterative: a listing may show thousands of identical "Positive" entries)."""
        came_from: dict[int, int] = {}  # stored index -> incoming index that reached it
        queue = deque([first])
        while queue:
            i = queue.popleft()
            for j, interval in enumerate(stored):
                if j in came_from or overlap(interval, incoming[i]) is None:
                    continue
                came_from[j] = i
                if j in partner_of:
                    queue.append(partner_of[j])
                    continue
                while True:
                    i = came_from[j]
                    before = held.get(i)
                    partner_of[j], held[i] = i, j
                    if before is None:  # back at `first`, which held nothing
                        return True
                    j = before
        return False

    for i, interval in enumerate(incoming):
        free = next(
            (j for j, s in enumerate(stored) if j not in partner_of and overlap(s, interval)),
            None,
        )
        if free is None:
            augment(i)
        else:
            partner_of[free], held[i] = i, free
    return dict(held)


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
    on two days has two different half-open intervals ``[earliest, latest)``, each holding
    its true time (pipelines/normalise/dates.py widens them for that): an incoming entry
    matches a stored one with the same identity whose interval it overlaps with positive
    length, and the stored interval narrows (never to nothing). Identical entries on one
    page are distinct sales, so matching is one-to-one (a multiset, `match_intervals`), and
    replaying a page adds nothing.

    `pages_feedback` holds (listing key, entries, provenance) per listing page; the stored
    entries of all those listings are read in one query and written in one bulk.
    """
    for listing_key, entries, _ in pages_feedback:
        for entry in entries:
            missing = [f for f in REQUIRED if entry.get(f) is None]
            if missing:
                raise ValueError(f"feedback entry for {listing_key!r} lacks {missing}: {entry!r}")
    keys = sorted({key for key, _, _ in pages_feedback})
    stored: Stored = defaultdict(list)
    if keys:
        query = {"source": run.source, "listing_key": {"$in": keys}}
        for doc in db[FEEDBACK].find(query):
            stored[(doc["listing_key"], _identity(doc))].append(as_of(doc))
    ops, new = plan_feedback(run, pages_feedback, stored)
    _, dups = bulk_ignoring_duplicates(db[FEEDBACK], ops)
    if dups:
        logger.warning("%d feedback entries were already stored", len(dups))
    return new - len(dups)


def plan_feedback(
    run: RunRef,
    pages_feedback: Sequence[tuple[str, Sequence[Mapping[str, Any]], Provenance]],
    stored: Stored,
) -> tuple[list[Any], int]:
    """The writes that record `pages_feedback` against `stored`, and how many entries are new.

    `stored` holds the known entries (as of now) by (listing key, identity); it is updated
    in place as the database will be once the writes are done (new entries join it, matched
    ones narrow), so successive runs can be planned against one mapping without a database.
    """
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
    return ops, new


def _plan(
    run: RunRef,
    listing_key: str,
    entries: Sequence[Mapping[str, Any]],
    provenance: Provenance,
    stored: Stored,
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
            stored.get((listing_key, ident), []),
            key=lambda d: (d["date_earliest"], d["date_latest"], d["_id"]),
        )
        ordered = sorted(group, key=_interval)
        shown = [_interval(entry) for entry in ordered]
        pairs = match_intervals([(d["date_earliest"], d["date_latest"]) for d in candidates], shown)
        unmatched = [entry for i, entry in enumerate(ordered) if i not in pairs]
        for j in sorted(pairs.values()):
            match = candidates[j]
            known = (match["date_earliest"], match["date_latest"])
            both = overlap(known, _hull(known, shown))
            assert both is not None, "a matched entry overlaps what the page shows"
            if both != known:
                interval = {"date_earliest": both[0], "date_latest": both[1]}
                match.update(interval)
                narrowed[match["_id"]] = interval
        # Occurrence numbers continue after the stored entries of this identity, so a new
        # entry never reuses the id of one already archived.
        for occurrence, entry in enumerate(unmatched, start=len(candidates)):
            doc = _new_doc(run, listing_key, entry, occurrence, provenance)
            ops.append(InsertOne(doc))
            stored.setdefault((listing_key, ident), []).append(doc)
            new += 1
    return new


def _hull(known: Interval, shown: Sequence[Interval]) -> Interval:
    """The span of the shown intervals that overlap `known`: where its true time must be.

    A stored entry paired with one of several identical entries ("Positive", no text,
    hidden buyer) may have been paired with the wrong one: which of them is which, only
    their true times could say. Its true time lies in its own partner's interval, which is
    one of those overlapping it, so narrowing to their span is right whatever the pairing;
    narrowing to the paired interval alone could lose the true time and, a run later, the
    match. An entry with a unique identity has one such interval: the plain intersection.
    """
    touching = [s for s in shown if overlap(known, s) is not None]
    return min(s[0] for s in touching), max(s[1] for s in touching)


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
