"""One run's fetched pages written through the archive: the live crawl's path and the spool's.

A page travels as a plain record (`page_record`): the raw response with its state, and
what normalisation read from it. The crawl writes it at once, or spools it while the
database is away; a spool flush later replays it through this same code, so a spooled
page is stored exactly as a page written live. Every write is idempotent, so a page
written twice (a batch cut off by the outage, then replayed) is stored once.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from bson.errors import InvalidDocument
from pymongo.errors import ConnectionFailure, PyMongoError

from pipelines.store.model import EntityObservation, PageRecord, Provenance
from pipelines.store.sizes import split_oversized, too_large_reason

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from crawler.items import PageItem
    from pipelines.store.archive import Archive
    from pipelines.store.model import RunRef

logger = logging.getLogger(__name__)

# What a server may refuse about one document (its size, a value) while it is alive.
REJECTIONS: tuple[type[Exception], ...] = (PyMongoError, InvalidDocument, ValueError)
# The state (and kind) of a source's rates page (crawler/pagestate.py), spelt here so the
# store does not import the crawler.
RATES_STATE = "rates"


def page_record(item: PageItem) -> dict[str, Any]:
    """A page item as the plain record the writer (and the spool) take."""
    return {
        "type": "page",
        "url": item.url,
        "status": item.status,
        "fetched_at": item.fetched_at,
        "state": item.state,
        "kind": item.kind,
        "body": item.body,
        "headers": dict(item.headers),
        "server_date": item.server_date,
        "error": item.error,
        "redirected_from": list(item.redirected_from),
        "problems": list(item.problems),
        "rate_quotes": dict(item.rate_quotes),
        "displayed": list(item.displayed),
        "records": [[kind, key, content] for kind, key, content in item.records],
        "feedback": list(item.feedback),
    }


def event_record(
    kind: str,
    reason: str,
    url: str | None = None,
    state: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "type": "event",
        "kind": kind,
        "reason": reason,
        "url": url,
        "state": state,
        "detail": dict(detail or {}),
    }


def is_unreachable(exc: BaseException) -> bool:
    """The server did not answer (connection refused or lost, no server selectable, a
    write timed out): not a verdict on the document, so it is retried, never dropped."""
    return isinstance(exc, ConnectionFailure) or (isinstance(exc, PyMongoError) and exc.timeout)


class PageWrites:
    """Pages, events, rates, entities and feedback of one run, in batches.

    `window` holds the pages written since the last `checkpoint`: until then some of their
    writes may sit in a batch, so after a lost connection they are what must be spooled.
    `on_failure` is called for each entity or feedback page the server refused (recorded
    as an `archive` event on its page), so the run's verdict can count it.
    """

    def __init__(
        self,
        archive: Archive,
        run: RunRef,
        *,
        parser_version: str,
        batch_size: int = 50,
        on_failure: Callable[[], None] = lambda: None,
        page_max_age: float | None = None,
        page_batch: int | None = None,
    ) -> None:
        self.archive = archive
        self.run = run
        self.parser_version = parser_version
        self.batch_size = batch_size
        self.on_failure = on_failure
        # Pages (records and bodies) are written once the oldest has waited `page_max_age`
        # seconds or `page_batch` are queued: a crawl killed outright fetches again only
        # those (and what it had not yet handed to the pipelines).
        self.page_max_age = page_max_age
        self.page_batch = page_batch
        self._unwritten_since: float | None = None
        self._unwritten = 0
        self.window: list[dict[str, Any]] = []
        self.pending: dict[str, list[EntityObservation]] = {"listing": [], "vendor": []}
        self.pending_feedback: list[tuple[str, list[dict[str, Any]], Provenance]] = []
        self.rates_seen: dict[str, Any] = {}

    def replay(self, record: Mapping[str, Any]) -> None:
        """Write one spooled record (a page or an event); other kinds are not writes."""
        if record.get("type") == "page":
            self.write(record)
        elif record.get("type") == "event":
            self.event(record)

    def event(self, record: Mapping[str, Any]) -> None:
        self.archive.record_event(
            self.run,
            kind=record["kind"],
            reason=record["reason"],
            url=record.get("url"),
            state=record.get("state"),
            detail=record.get("detail"),
        )

    def write(self, page: Mapping[str, Any]) -> None:
        """Archive one page and queue its records; a full batch writes every batch."""
        self.window.append(dict(page))
        run, url, state = self.run, page["url"], page["state"]
        sha = self.archive.store_page(
            run,
            PageRecord(
                url=url,
                status=page.get("status"),
                fetched_at=page["fetched_at"],
                state=state,
                kind=page.get("kind"),
                body=page.get("body"),
                headers=page.get("headers") or {},
                server_date=page.get("server_date"),
                error=page.get("error"),
                redirected_from=tuple(page.get("redirected_from") or ()),
                displayed=tuple(page.get("displayed") or ()),
            ),
        )
        self._flush_old_pages()
        self._page_events(page)
        quotes = page.get("rate_quotes") or {}
        changed = {c: q for c, q in quotes.items() if self.rates_seen.get(c) != q["value"]}
        if changed:  # every page shows the rates; write only what is new to this run
            self.archive.record_rates(run, changed)
            self.rates_seen.update({c: q["value"] for c, q in changed.items()})
        provenance = Provenance(
            url=url,
            page_sha256=sha or "",
            fetched_at=page["fetched_at"],
            parser_version=self.parser_version,
        )
        records = page.get("records") or []
        for kind, key, content in records:
            self.pending[kind].append(EntityObservation(key, content, provenance))
        if page.get("feedback") and records:
            self.pending_feedback.append((records[0][1], list(page["feedback"]), provenance))
        sizes = [len(batch) for batch in self.pending.values()] + [len(self.pending_feedback)]
        if max(sizes) >= self.batch_size:
            self.checkpoint()

    def _flush_old_pages(self) -> None:
        """Write the queued pages once the oldest has waited `page_max_age` seconds, or
        `page_batch` of them wait (a burst after a long entity batch)."""
        if self.page_max_age is None and self.page_batch is None:
            return
        now = time.monotonic()
        if self._unwritten_since is None:
            self._unwritten_since = now
        self._unwritten += 1
        old = self.page_max_age is not None and now - self._unwritten_since >= self.page_max_age
        if old or (self.page_batch is not None and self._unwritten >= self.page_batch):
            self.archive.flush()
            self._unwritten_since, self._unwritten = None, 0

    def write_queued_pages(self) -> None:
        """Write the pages queued for a bulk now, whatever their age: the writer thread has
        nothing else to do, so they need not wait for the next page to come."""
        if self._unwritten:
            self.archive.flush()
            self._unwritten_since, self._unwritten = None, 0

    def _page_events(self, page: Mapping[str, Any]) -> None:
        run, url, state = self.run, page["url"], page["state"]
        if page.get("error"):
            kind = "fetch" if state == "error" else "refused"
            self.archive.record_event(run, kind=kind, reason=page["error"], url=url, state=state)
        elif state not in ("index", "listing", "vendor", RATES_STATE):
            self.archive.record_event(
                run,
                kind="page_state",
                reason=f"page in state {state}",
                url=url,
                state=state,
                detail={"status": page.get("status")},
            )
        no_rate = state != RATES_STATE or not page.get("rate_quotes")
        if page.get("kind") == RATES_STATE and no_rate:
            self.archive.record_event(
                run,
                kind="rates",
                reason=f"the rates page gave no rate (state {state}"
                + (f": {page['error']}" if page.get("error") else "")
                + "); USD values of this run fall back to the project rate table",
                url=url,
                state=state,
            )
        for problem in page.get("problems") or []:
            self.archive.record_event(run, kind="extraction", reason=problem, url=url, state=state)

    def checkpoint(self) -> None:
        """Write every batch and queued page: the window's pages are then all stored."""
        for kind in self.pending:
            batch, self.pending[kind] = self.pending[kind], []
            if batch:
                self._entities(kind, batch)
        feedback, self.pending_feedback = self.pending_feedback, []
        if feedback:
            self._feedback(feedback)
        self.archive.flush()
        self._unwritten_since, self._unwritten = None, 0
        self.window.clear()

    def _entities(self, kind: str, batch: list[EntityObservation]) -> None:
        fitting, oversized = split_oversized(batch)
        for obs, size in oversized:
            self._refused(too_large_reason(kind, obs.key, size), obs, kind, size)
        try:
            self.archive.record_entities(self.run, kind, fitting)  # type: ignore[arg-type]
        except REJECTIONS as exc:
            if is_unreachable(exc):
                raise
            # One document refused must not take the batch with it: one at a time.
            logger.warning("a %s batch was refused (%s); writing it one by one", kind, exc)
            for obs in fitting:
                try:
                    self.archive.record_entities(self.run, kind, [obs])  # type: ignore[arg-type]
                except REJECTIONS as one:
                    if is_unreachable(one):
                        raise
                    reason = f"{kind} {obs.key} not stored: {type(one).__name__}: {one}"
                    self._refused(reason[:2000], obs, kind, None)

    def _refused(self, reason: str, obs: EntityObservation, kind: str, size: int | None) -> None:
        logger.error("%s (page %s)", reason, obs.provenance.url)
        detail: dict[str, Any] = {"key": obs.key, "entity": kind}
        if size is not None:
            detail["bytes"] = size
        self.archive.record_event(
            self.run, kind="archive", reason=reason, url=obs.provenance.url, detail=detail
        )
        self.on_failure()

    def _feedback(self, batch: list[tuple[str, list[dict[str, Any]], Provenance]]) -> None:
        try:
            self.archive.record_feedback_many(self.run, batch)
        except REJECTIONS as exc:
            if is_unreachable(exc):
                raise
            for entry in batch:
                try:
                    self.archive.record_feedback_many(self.run, [entry])
                except REJECTIONS as one:
                    if is_unreachable(one):
                        raise
                    key, entries, provenance = entry
                    reason = (
                        f"feedback of listing {key} ({len(entries)} entries) not stored: "
                        f"{type(one).__name__}: {one}"
                    )[:2000]
                    logger.error("%s (page %s)", reason, provenance.url)
                    self.archive.record_event(
                        self.run, kind="archive", reason=reason, url=provenance.url
                    )
                    self.on_failure()
