"""Sales estimates from feedback: each entry one sale at the price valid when it was left."""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipelines.query.runs import READABLE, QueryError, Run, market_clock, source_runs
from pipelines.store.codec import from_bson
from pipelines.store.export import usd_value
from pipelines.store.rereads import rereads_collection, run_readers
from pipelines.store.schema import FEEDBACK, versions_collection

if TYPE_CHECKING:
    from datetime import datetime

    from pymongo.database import Database

logger = logging.getLogger(__name__)

METHOD = (
    "Soska & Christin (2015): each feedback entry counts as one sale, priced at the "
    "listing's price valid when the feedback was left (the midpoint of its date interval, "
    "matched to the last run whose market clock is at or before it; feedback older than "
    "the listing's first archived version takes that version's price), in USD at the "
    "rates recorded by the run whose price was used."
)
CAVEATS = (
    "Feedback is a lower bound on sales: not every buyer leaves feedback, and a listing "
    "page shows only its newest entries, so sales between crawls beyond those are missed.",
    "Feedback dates are intervals ('2 weeks ago'): a price change inside an interval can be "
    "attributed to the wrong side of it.",
    "Each entry is counted once however many runs showed it; identical entries on one page "
    "count as separate sales.",
    "Prices are what the market displayed: tiers, discounts, scams and refunds are ignored; "
    "entries without a price or a USD rate are counted under `unpriced`.",
)
VERSION_FIELDS = {"key": 1, "v": 1, "valid_from_seq": 1, "valid_to_seq": 1}
VERSION_FIELDS |= {"content.price": 1, "content.vendor": 1, "content.title": 1}


def sales(
    db: Database,
    source: str,
    *,
    by: str = "vendor",
    since: datetime | None = None,
    until: datetime | None = None,
    parser: str | None = None,
) -> dict[str, Any]:
    """Estimated sales per vendor or per listing from feedback left in [since, until).

    Two index-led reads of the source (its feedback, its listing versions), joined here.
    A price is read as the run that prices it was read: its newest reparse unless
    `parser` names a reading (see pipelines/store/rereads.py).
    """
    if by not in ("vendor", "listing"):
        raise ValueError(f"sales are grouped by 'vendor' or 'listing', not {by!r}")
    runs = source_runs(db, source)
    clock = _RunClock(db, runs)
    entries = [e for e in _feedback(db, source, until) if _within(midpoint(e), since, until)]
    versions = _versions(db, source, {e["listing_key"] for e in entries})
    rereads = _Rereads(db, source, runs, parser)
    rows: dict[str, dict[str, Any]] = {}
    for entry in entries:
        when = midpoint(entry)
        seq = clock.seq_at(when)
        chosen = _version_at(versions.get(entry["listing_key"], []), seq)
        run = clock.run_for(chosen, seq) if chosen else None
        content = rereads.content(chosen, run) if chosen and run else {}
        group = entry["listing_key"] if by == "listing" else str(content.get("vendor") or "?")
        row = rows.setdefault(group, _row(by, group, entry, content))
        row["feedback"] += 1
        row["first_feedback"] = min(row["first_feedback"], when)
        row["last_feedback"] = max(row["last_feedback"], when)
        usd = _usd(content, run) if run else None
        if usd is None:
            row["unpriced"] += 1
        else:
            row["usd"] += usd
    ordered = sorted(rows.values(), key=lambda r: (-r["usd"], r[by]))
    return {
        "source": source,
        "by": by,
        "since": since,
        "until": until,
        "method": METHOD,
        "caveats": list(CAVEATS),
        "totals": {
            "feedback": sum(r["feedback"] for r in ordered),
            "usd": sum((r["usd"] for r in ordered), Decimal(0)),
            "unpriced": sum(r["unpriced"] for r in ordered),
        },
        "rows": ordered,
    }


def midpoint(entry: dict[str, Any]) -> datetime:
    """The middle of a feedback entry's date interval: the moment its sale is priced at."""
    earliest, latest = entry["date_earliest"], entry["date_latest"]
    return earliest + (latest - earliest) / 2  # type: ignore[no-any-return]


def _within(when: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or when >= since) and (until is None or when < until)


def _row(by: str, group: str, entry: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {by: group}
    if by == "listing":
        row["title"] = content.get("title")
        row["vendor"] = content.get("vendor")
    when = midpoint(entry)
    return {**row, "feedback": 0, "usd": Decimal(0), "unpriced": 0,
            "first_feedback": when, "last_feedback": when}  # fmt: skip


def _feedback(db: Database, source: str, until: datetime | None) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"source": source}
    if until is not None:
        query["date_earliest"] = {"$lt": until}
    fields = {"listing_key": 1, "date_earliest": 1, "date_latest": 1}
    return list(db[FEEDBACK].find(query, fields, batch_size=5000))


def _versions(db: Database, source: str, keys: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Every version of the listings that have feedback, oldest first, by key."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    cursor = db[versions_collection("listing")].find(
        {"source": source}, VERSION_FIELDS, batch_size=5000
    )
    for doc in cursor:
        if doc["key"] in keys:
            found[doc["key"]].append(from_bson(doc))
    for docs in found.values():
        docs.sort(key=lambda d: d["v"])
    return found


def _version_at(versions: list[dict[str, Any]], seq: int | None) -> dict[str, Any] | None:
    """The latest version started at or before `seq`, else (older feedback) the first."""
    if not versions:
        return None
    started = [v for v in versions if seq is not None and v["valid_from_seq"] <= seq]
    return started[-1] if started else versions[0]


def _usd(content: dict[str, Any], run: Run) -> Decimal | None:
    price = content.get("price") or {}
    if not isinstance(price.get("amount"), Decimal):
        return None
    value = usd_value(price["amount"], str(price.get("currency") or ""), run.rates, run.run_id)
    return None if value is None else value["amount"]  # type: ignore[no-any-return]


class _Rereads:
    """Listing rereads of the readings that answer for each run, by key (one read each)."""

    def __init__(self, db: Database, source: str, runs: list[Run], parser: str | None) -> None:
        crawled = {run.run_id: run.parser_version for run in runs}
        self.parser = parser
        self.readers = run_readers(db, source, crawled, parser)
        self.docs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for name in {r for r in self.readers.values() if r is not None}:
            query = {"source": source, "parser": name, "valid_to_seq": {"$gt": 0}}
            for doc in db[rereads_collection("listing")].find(query):
                self.docs[(name, doc["key"])].append(from_bson(doc))

    def content(self, version: dict[str, Any], run: Run) -> dict[str, Any]:
        """The version's content as the reading of `run` has it."""
        if run.run_id not in self.readers:  # a named parser that never read this run
            raise QueryError(f"run {run.run_id} was not read by parser {self.parser}")
        reader = self.readers[run.run_id]
        for doc in self.docs.get((reader or "", version["key"]), ()):
            if doc["valid_from_seq"] <= run.seq < doc["valid_to_seq"] and doc["content"]:
                return doc["content"]  # type: ignore[no-any-return]
        return version.get("content") or {}


class _RunClock:
    """The source's runs on the market's clock: which run was in effect at a moment."""

    def __init__(self, db: Database, runs: list[Run]) -> None:
        self.runs = {run.seq: run for run in runs}
        timed = []
        for run in runs:
            if run.status in READABLE:
                moment = market_clock(db, run) or run.started_at
                if moment is not None:
                    timed.append((moment, run.seq))
        timed.sort()
        self.moments = [m for m, _ in timed]
        self.seqs = [s for _, s in timed]

    def seq_at(self, when: datetime) -> int | None:
        """Seq of the last run whose clock is at or before `when` (None: before them all)."""
        index = bisect.bisect_right(self.moments, when)
        return self.seqs[index - 1] if index else None

    def run_for(self, version: dict[str, Any], seq: int | None) -> Run:
        """The run whose rates price a sale: the run in effect when the feedback was left,
        kept within the version's validity (its first run for older feedback, its last
        for feedback after it ended)."""
        first = version["valid_from_seq"]
        if seq is None or seq < first:
            return self.runs[first]
        chosen = min(seq, version["valid_to_seq"] - 1)
        return self.runs.get(chosen) or self.runs[first]
