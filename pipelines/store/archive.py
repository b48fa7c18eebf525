"""The archive's write side: the one object the Scrapy pipeline talks to."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from pipelines.store import feedback, observations, pages, rate_table, runs
from pipelines.store.delisting import delist_unobserved, listed_entities
from pipelines.store.entities import EntityWriter, load_state
from pipelines.store.model import CloseSummary
from pipelines.store.schema import (
    FEEDBACK,
    KINDS,
    current_collection,
    ensure_indexes,
    versions_collection,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from pymongo.database import Database

    from pipelines.store.entities import EntityState
    from pipelines.store.model import (
        BatchSummary,
        EntityObservation,
        PageRecord,
        Provenance,
        RunRef,
    )

logger = logging.getLogger(__name__)


class Archive:
    """Versioned, idempotent writes of runs, pages, entities and feedback.

    Every write can be replayed (retry, resume, reparse) without duplicating anything, and
    nothing relies on transactions, so it behaves the same on secantusdb and on a replica set.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._writers = {kind: EntityWriter(db, kind) for kind in KINDS}
        self._pages = pages.PageWriter(db)
        # Current state per (run, kind), loaded by one streaming scan on first use.
        self._state: dict[tuple[str, str], dict[str, EntityState]] = {}

    def ensure_indexes(self) -> None:
        """Create the indexes the write and query paths rely on (idempotent)."""
        ensure_indexes(self.db)

    def open_run(
        self,
        source: str,
        *,
        parser_version: str,
        started_at: datetime,
        config: Mapping[str, Any] | None = None,
        resume: str | None = None,
    ) -> RunRef:
        """Open a new run, or reopen `resume` (a run id) to retry or continue it."""
        if resume is not None:
            return runs.resume_run(self.db, resume, source=source, started_at=started_at)
        return runs.open_run(
            self.db, source, parser_version=parser_version, started_at=started_at, config=config
        )

    def store_page(self, run: RunRef, page: PageRecord) -> str | None:
        """Archive a response (body once, by sha256); returns the body hash for provenance.

        Pages are written in bulks: call `flush` (or any write that cites pages) to persist.
        """
        return self._pages.add(run, page)

    def flush(self) -> None:
        """Write queued page records and bodies now."""
        self._pages.flush()

    def queued_page_urls(self) -> list[str]:
        """Pages accepted but not yet written (what a database failure would leave out)."""
        return self._pages.queued_urls()

    def record_entities(
        self,
        run: RunRef,
        kind: Literal["listing", "vendor"],
        batch: Sequence[EntityObservation],
    ) -> BatchSummary:
        """Version what changed, then record which keys the run observed."""
        self.flush()  # versions cite their pages: the pages go first
        summary = self._writers[kind].record(run, batch, self._state_for(run, kind))
        observations.record_observed(self.db, run, kind, (obs.key for obs in batch))
        return summary

    def _state_for(self, run: RunRef, kind: str) -> dict[str, EntityState]:
        cache_key = (run.run_id, kind)
        if cache_key not in self._state:
            self._state[cache_key] = load_state(self.db[current_collection(kind)], run.source)
            logger.debug("loaded %d %ss of %s", len(self._state[cache_key]), kind, run.source)
        return self._state[cache_key]

    def record_feedback(
        self,
        run: RunRef,
        listing_key: str,
        entries: Sequence[Mapping[str, Any]],
        provenance: Provenance,
    ) -> int:
        """Add a listing's feedback entries not archived yet; returns how many were new."""
        return self.record_feedback_many(run, [(listing_key, entries, provenance)])

    def record_feedback_many(
        self,
        run: RunRef,
        pages_feedback: Sequence[tuple[str, Sequence[Mapping[str, Any]], Provenance]],
    ) -> int:
        """The feedback of many listing pages in one read and one bulk write."""
        self.flush()  # feedback cites its page
        return feedback.record_feedback_many(self.db, run, pages_feedback)

    def record_rates(self, run: RunRef, rates: Mapping[str, Mapping[str, Any]]) -> None:
        """Keep the exchange rates the run saw; USD values are derived from them at export."""
        runs.record_rates(self.db, run, rates)

    def record_event(
        self,
        run: RunRef,
        *,
        kind: str,
        reason: str,
        url: str | None = None,
        state: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Record on the run why a page failed or was skipped (URL, state, reason)."""
        runs.record_event(
            self.db, run, kind=kind, reason=reason, url=url, state=state, detail=detail
        )

    def close_run(
        self,
        run: RunRef,
        *,
        status: Literal["complete", "partial", "failed", "interrupted"],
        counts: Mapping[str, Any],
        reasons: Sequence[str] = (),
    ) -> CloseSummary:
        """Finish a run; only a complete run delists what it did not observe.

        Per-kind counts are computed from what is stored (not accumulated in memory), so they
        are exact even when batches were replayed or written by several crawler processes.
        A complete run that observed no entity of a kind delists none of that kind: that is
        a crawl that never reached those pages, not a market that emptied; it is recorded in
        `delisting_skipped`.
        """
        if status not in runs.CLOSED_STATUSES:
            raise ValueError(f"run status must be one of {runs.CLOSED_STATUSES}, not {status!r}")
        self.flush()
        totals: dict[str, Any] = dict(counts)
        # Counted from the store, so a run resumed in another process counts all of it.
        totals["feedback_new"] = self.db[FEEDBACK].count_documents(
            {"source": run.source, "first_seq": run.seq}
        )
        skipped: list[str] = []
        delisted_total = 0
        for kind in KINDS:
            seen = observations.observed_keys(self.db, run.run_id, kind)
            if status == "complete":
                if seen:
                    delist_unobserved(self.db, run, kind, seen)
                else:
                    skipped.append(kind)
            per_kind = self._kind_counts(run, kind, seen)
            delisted_total += per_kind["delisted"]
            totals[kind] = per_kind
        # The table's rates of the run's day go with it, as they are now (past runs are
        # immutable); they convert only what the market's own rates cannot.
        rate_table.copy_onto_run(self.db, run.run_id)
        runs.finish_run(
            self.db,
            run,
            status=status,
            counts=totals,
            reasons=reasons,
            extra={"delisting_skipped": skipped},
            listed={kind: totals[kind]["listed"] for kind in KINDS},
        )
        for kind in KINDS:
            self._state.pop((run.run_id, kind), None)
        return CloseSummary(run.run_id, status, delisted_total, totals)

    def _kind_counts(self, run: RunRef, kind: str, seen: set[str]) -> dict[str, int]:
        versions = self.db[versions_collection(kind)]
        made = versions.find(
            {"source": run.source, "valid_from_run": run.run_id},
            {"key": 1, "v": 1, "parser_changed": 1},
        )
        new_keys: set[str] = set()
        changed_keys: set[str] = set()
        parser_keys: set[str] = set()
        for doc in made:
            (new_keys if doc["v"] == 1 else changed_keys).add(doc["key"])
            if doc.get("parser_changed"):
                parser_keys.add(doc["key"])
        changed_keys -= new_keys
        delisted = versions.count_documents(
            {"source": run.source, "valid_to_run": run.run_id, "end": "delisted"}
        )
        return {
            "observed": len(seen),
            "new": len(new_keys),
            "changed": len(changed_keys),
            "changed_with_new_parser": len(parser_keys & changed_keys),
            "unchanged": len(seen - new_keys - changed_keys),
            "delisted": delisted,
            "listed": len(listed_entities(self.db, run.source, kind)),
        }
