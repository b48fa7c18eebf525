"""Which run a question means: by id, by time, and each run's clocks and rates."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING

from pipelines.store.codec import from_bson
from pipelines.store.run_pages import run_pages
from pipelines.store.schema import PAGES, RUNS

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)

PROJECTION = dict.fromkeys(
    ("seq", "status", "started_at", "rates", "counts", "source", "parser_version"), 1
)

# Runs whose content can be asked about; a running run is still being written.
READABLE = ("complete", "partial", "interrupted", "failed")


class QueryError(ValueError):
    """A question the archive cannot answer as asked (no such run, a run of another source)."""


@dataclass(frozen=True)
class Run:
    """What queries need to know about a run: order, status, both clocks and its rates."""

    run_id: str
    source: str
    seq: int
    status: str
    started_at: datetime | None
    rates: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    parser_version: str = ""

    def header(self) -> dict[str, Any]:
        """The run as a result names it."""
        return {
            "run": self.run_id,
            "seq": self.seq,
            "status": self.status,
            "started_at": self.started_at,
        }


def source_runs(
    db: Database, source: str, first: int | None = None, end: int | None = None
) -> list[Run]:
    """Runs of a source, oldest first: all, or those with `first <= seq < end` (one range
    on the (source, seq) index, so a question about a few runs reads only those)."""
    query: dict[str, Any] = {"source": source}
    if first is not None or end is not None:
        query["seq"] = {
            **({"$gte": first} if first is not None else {}),
            **({"$lt": end} if end is not None else {}),
        }
    cursor = db[RUNS].find(query, PROJECTION).sort("seq", ASCENDING)
    return [_run(from_bson(doc)) for doc in cursor]


def _run(doc: dict[str, Any]) -> Run:
    return Run(
        run_id=doc["_id"],
        source=doc["source"],
        seq=int(doc["seq"]),
        status=doc.get("status", ""),
        started_at=_utc(doc.get("started_at")),
        rates=doc.get("rates") or {},
        counts=doc.get("counts") or {},
        parser_version=str(doc.get("parser_version") or ""),
    )


def resolve_run(
    db: Database, source: str, *, run: str | None = None, at: datetime | None = None
) -> Run:
    """The run a question names: `run` by id (or seq), else the last readable run that
    started at or before `at`, else the latest complete or partial run.

    `at` is the crawler's clock (`started_at`): "what had the archive seen by then".
    """
    if run is not None:  # one indexed lookup, by id or by (source, seq)
        doc = db[RUNS].find_one({"_id": run, "source": source}, PROJECTION)
        if doc is None and run.isdigit() and str(int(run)) == run:
            doc = db[RUNS].find_one({"source": source, "seq": int(run)}, PROJECTION)
        if doc is None:
            raise QueryError(f"no run {run!r} of source {source!r}")
        return _run(from_bson(doc))
    runs = source_runs(db, source)
    if at is not None:
        moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        before = [
            r
            for r in runs
            if r.status in READABLE and r.started_at is not None and r.started_at <= moment
        ]
        if not before:
            raise QueryError(f"source {source!r} has no run started at or before {at}")
        return before[-1]
    done = [r for r in runs if r.status in ("complete", "partial")]
    if not done:
        raise QueryError(f"source {source!r} has no complete or partial run")
    return done[-1]


def market_clock(db: Database, run: Run) -> datetime | None:
    """The market's own time during a run: the `Date` of its first archived page.

    Feedback dates are read against that clock ("5 days ago"), so matching a feedback
    date to the run in effect must use it too; None when the market sent no date.
    """
    doc = db[PAGES].find_one({"run": run.run_id, "server_date": {"$ne": None}}, {"server_date": 1})
    if doc is None:  # every page it archived changed only in its noise (page_packs.py)
        doc = next(run_pages(db, run.run_id, ("server_date",), having="server_date"), None)
    return _utc(doc["server_date"]) if doc else None


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
