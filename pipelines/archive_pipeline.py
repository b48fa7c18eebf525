"""Item pipeline: every page into the raw archive, every record into the versioned store.

It owns the run: opened when the spider opens, closed with a completeness verdict when it
closes, with every failure recorded as a run event that names the URL and the page state.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from pymongo.errors import PyMongoError
from scrapy import signals
from scrapy.utils.defer import deferred_from_coro

from crawler.signals import run_event
from pipelines.accounting import RunAccounting
from pipelines.store.archive import Archive
from pipelines.store.connect import settings_database
from pipelines.store.leases import LeaseHeldError, SourceLease
from pipelines.store.model import EntityObservation, PageRecord, Provenance
from pipelines.store.runs import ResumeRefusedError

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Spider
    from scrapy.crawler import Crawler

    from crawler.items import PageItem
    from crawler.sources.model import Source
    from pipelines.store.model import RunRef

logger = logging.getLogger(__name__)


# Close reasons after which the crawl did not finish but may go on: the run can be resumed.
INTERRUPTIONS = {
    "shutdown": "the crawl was stopped by a signal before it finished",
    "lease_lost": "another crawl took over the source's lease",
}


def parser_version(source: Source) -> str:
    """Code version plus a hash of the source's blueprint: either change means a new parser."""
    try:
        code = version("darkarchive")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        code = "0"
    blueprint = source.model_dump_json(include={"pages", "rates", "normalise", "states"})
    return f"{code}+{hashlib.sha256(blueprint.encode()).hexdigest()[:12]}"


class ArchivePipeline:
    """Writes pages, entities, feedback, rates and events; closes the run with its verdict."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.batch_size = settings.getint("ARCHIVE_BATCH_SIZE", 200)
        self.resume = settings.get("ARCHIVE_RESUME_RUN") or None
        self.lease_ttl = settings.getfloat("ARCHIVE_LEASE_TTL", 60.0)
        self.lease: SourceLease | None = None
        self.accounting = RunAccounting()
        self.pending: dict[str, list[EntityObservation]] = {"listing": [], "vendor": []}
        self.pending_feedback: list[tuple[str, list[dict[str, Any]], Provenance]] = []
        self.rates_seen: dict[str, Any] = {}
        self.archive_error: str | None = None
        self.unstored: list[str] = []
        self._closing: Any = None
        self._disconnect: Callable[[], None] = lambda: None
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self._record_event, signal=run_event)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        return cls(crawler)

    @property
    def spider(self) -> Spider:
        assert self.crawler.spider is not None
        return self.crawler.spider

    def open_spider(self) -> None:
        try:
            self._open_run()
        except (LeaseHeldError, ResumeRefusedError) as exc:  # another crawl holds the source
            self.crawler.stats.set_value("darkarchive/refused", str(exc))  # type: ignore[union-attr]
            self._let_go()
            raise
        except (ValueError, PyMongoError) as exc:
            self.crawler.stats.set_value("darkarchive/open_error", str(exc))  # type: ignore[union-attr]
            self._let_go()
            raise

    def _open_run(self) -> None:
        source: Source = self.spider.source  # type: ignore[attr-defined]
        db, self._disconnect = settings_database(self.crawler.settings)
        self.archive = Archive(db)
        self.archive.ensure_indexes()
        # One run per source at a time, before a run (and its seq) exists.
        self.lease = SourceLease(db, source.id, ttl=self.lease_ttl)
        self.lease.acquire()
        self.parser_version = parser_version(source)
        self.accounting.drift_limits = {
            kind: blueprint.max_failed_share
            for kind, blueprint in source.pages.items()
            if kind in ("listing", "vendor")
        }
        self.run: RunRef = self.archive.open_run(
            source.id,
            parser_version=self.parser_version,
            started_at=datetime.now(UTC),
            config={
                "mirror": self.spider.mirror,  # type: ignore[attr-defined]
                "mirrors": self.spider.mirrors,  # type: ignore[attr-defined]
                "network": source.network,
            },
            resume=self.resume,
        )
        self.crawler.stats.set_value("darkarchive/run_id", self.run.run_id)  # type: ignore[union-attr]
        self.lease.attach_run(self.run.run_id)
        self.lease.keep_renewed(self._lease_lost)
        logger.info("run %s opened (parser %s)", self.run.run_id, self.parser_version)

    def _lease_lost(self, reason: str) -> None:
        """From the renewal thread: another crawl now owns the source; this one stops."""
        from twisted.internet import reactor

        def stop() -> None:
            self._record_event("lease", reason)
            self._closing = deferred_from_coro(
                self.crawler.engine.close_spider_async(reason="lease_lost")  # type: ignore[union-attr]
            )

        reactor.callFromThread(stop)  # type: ignore[attr-defined]

    def _let_go(self) -> None:
        """Release the lease (if ours) and the database connection."""
        if self.lease is not None:
            self.lease.release()
            self.lease = None
        self._disconnect()
        self._disconnect = lambda: None

    def process_item(self, item: PageItem) -> PageItem:
        if self.archive_error is not None:
            self.unstored.append(item.url)
            return item
        try:
            self._archive(item)
        except PyMongoError as exc:
            self._stop_crawl(exc, item)
        except Exception as exc:  # a store bug: record it and make the run partial, go on
            self._archive_failed(exc, item.url)
        return item

    def _record_event(
        self, kind: str, reason: str, url: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        """What a component (Tor routing, backoff) decided, on the run where it happened."""
        if self.archive_error is not None or not hasattr(self, "run"):
            logger.warning("not recorded on a run: %s %s", kind, reason)
            return
        try:
            self.archive.record_event(self.run, kind=kind, reason=reason, url=url, detail=detail)
        except PyMongoError:
            logger.exception("could not record on run %s: %s", self.run.run_id, reason)

    def _archive_failed(self, error: Exception, url: str) -> None:
        logger.exception("archiving %s failed", url)
        self.accounting.archive_failures += 1
        reason = f"archiving failed: {type(error).__name__}: {error}"
        try:
            self.archive.record_event(self.run, kind="archive", reason=reason, url=url)
        except Exception:  # the log line above is then the only trace
            logger.exception("could not record the failure of %s on run %s", url, self.run.run_id)

    def _stop_crawl(self, error: PyMongoError, item: PageItem) -> None:
        """Fetching on while nothing can be stored would lose every page: stop instead."""
        self.archive_error = f"{type(error).__name__}: {error}"
        self.unstored = self.archive.queued_page_urls()
        logger.error(
            "archive database failed while storing %s (%s); stopping the crawl",
            item.url,
            self.archive_error,
        )
        self._closing = deferred_from_coro(
            self.crawler.engine.close_spider_async(reason="archive_unavailable")  # type: ignore[union-attr]
        )

    def _archive(self, item: PageItem) -> None:
        run = self.run
        sha = self.archive.store_page(
            run,
            PageRecord(
                url=item.url,
                status=item.status,
                fetched_at=item.fetched_at,
                state=item.state,
                kind=item.kind,
                body=item.body,
                headers=item.headers,
                server_date=item.server_date,
                error=item.error,
                redirected_from=tuple(item.redirected_from),
            ),
        )
        self.accounting.add(item)
        if item.error:
            kind = "fetch" if item.state == "error" else "refused"
            self.archive.record_event(
                run, kind=kind, reason=item.error, url=item.url, state=item.state
            )
        elif item.state not in ("index", "listing", "vendor"):
            self.archive.record_event(
                run,
                kind="page_state",
                reason=f"page in state {item.state}",
                url=item.url,
                state=item.state,
                detail={"status": item.status},
            )
        for problem in item.problems:
            self.archive.record_event(
                run, kind="extraction", reason=problem, url=item.url, state=item.state
            )
        changed = {
            currency: quote
            for currency, quote in item.rate_quotes.items()
            if self.rates_seen.get(currency) != quote["value"]
        }
        if changed:  # every page shows the rates; write only what is new to this run
            self.archive.record_rates(run, changed)
            self.rates_seen.update({c: q["value"] for c, q in changed.items()})
        provenance = Provenance(
            url=item.url,
            page_sha256=sha or "",
            fetched_at=item.fetched_at,
            parser_version=self.parser_version,
        )
        for kind, key, content in item.records:
            self.pending[kind].append(EntityObservation(key, content, provenance))
            if len(self.pending[kind]) >= self.batch_size:
                self._flush(kind)
        if item.feedback and item.records:
            self.pending_feedback.append((item.records[0][1], item.feedback, provenance))
            if len(self.pending_feedback) >= self.batch_size:
                self._flush_feedback()
        item.body = None  # archived; do not keep page bodies alive in memory

    def _flush_feedback(self) -> None:
        batch, self.pending_feedback = self.pending_feedback, []
        if batch:
            self.accounting.feedback_new += self.archive.record_feedback_many(self.run, batch)

    def _flush(self, kind: str) -> None:
        batch, self.pending[kind] = self.pending[kind], []
        if batch:
            self.archive.record_entities(self.run, kind, batch)  # type: ignore[arg-type]

    def close_spider(self) -> None:
        if self.archive_error is not None:
            return
        try:
            for kind in self.pending:
                self._flush(kind)
            self._flush_feedback()
        except PyMongoError as exc:
            self.archive_error = f"{type(exc).__name__}: {exc}"
            self.unstored = self.archive.queued_page_urls()
        except Exception as exc:
            self._archive_failed(exc, "(final batch)")

    def _spider_closed(self, spider: Spider, reason: str) -> None:
        """The verdict needs the close reason, which Scrapy gives only after pipelines close."""
        if not hasattr(self, "run"):  # the run never opened (refused); nothing to close
            self._let_go()
            return
        try:
            if self.archive_error is None:
                self._close_run(spider, reason)
        except PyMongoError as exc:
            self.archive_error = f"{type(exc).__name__}: {exc}"
        finally:
            if self.archive_error is not None:
                self._report_lost()
            self._let_go()

    def _close_run(self, spider: Spider, reason: str) -> None:
        refusals = getattr(spider, "refusals", [])
        status, reasons = self.accounting.verdict(refusals, reason)
        if reason in INTERRUPTIONS and not refusals:
            status = "interrupted"
            reasons = [
                f"interrupted: {INTERRUPTIONS[reason]}; resume with "
                f"`darkarchive crawl {self.run.source} --resume {self.run.run_id}`",
                *[r for r in reasons if not r.startswith("crawl stopped early")],
            ]
        for refusal in refusals:
            self.archive.record_event(self.run, kind="refused", reason=refusal)
        summary = self.archive.close_run(
            self.run, status=status, counts=self.accounting.counts(), reasons=reasons
        )
        self.crawler.stats.set_value("darkarchive/run_status", status)  # type: ignore[union-attr]
        logger.info(
            "run %s closed: %s%s; %s",
            self.run.run_id,
            status,
            f" ({'; '.join(reasons)})" if reasons else "",
            summary,
        )

    def _report_lost(self) -> None:
        """The run cannot be closed in a dead database: say what is missing from it."""
        logger.error(
            "run %s left open: the archive database failed (%s); %d fetched page(s) were not "
            "stored, first: %s. Re-crawl with --resume %s once the database is back.",
            self.run.run_id,
            self.archive_error,
            len(self.unstored),
            self.unstored[:3],
            self.run.run_id,
        )
        self.crawler.stats.set_value("darkarchive/run_status", "archive_unavailable")  # type: ignore[union-attr]
        self.crawler.stats.set_value("darkarchive/unstored_pages", len(self.unstored))  # type: ignore[union-attr]
