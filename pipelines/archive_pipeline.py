"""Item pipeline: every page into the raw archive, every record into the versioned store.

It owns the run: opened when the spider opens, closed with a completeness verdict when it
closes, with every failure recorded as a run event that names the URL and the page state.
When the database stops answering, pages go to the run's local spool and the crawl goes
on; once the database answers again the spool is written in order and the run closes
normally. If the crawl ends first, the spool keeps the verdict for `darkarchive spool
flush`.

Every write runs on the crawl's archive writer thread (pipelines/store/writer_thread.py),
in the order pages, events and the close came in, so fetching never waits on the database.
The write state (`writes`, `outage`, `accounting`, the spool, `stopped`, `lost`) is touched
only on that thread; Scrapy's engine and stats only on the reactor thread.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymongo
from pymongo.errors import PyMongoError
from scrapy import signals
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future

from crawler.signals import run_event
from crawler.urls import page_identity
from pipelines.accounting import RunAccounting
from pipelines.parser_version import parser_version
from pipelines.store.archive import Archive
from pipelines.store.connect import darkarchive_home, settings_database
from pipelines.store.leases import LeaseHeldError, SourceLease
from pipelines.store.page_writes import PageWrites, event_record, is_unreachable, page_record
from pipelines.store.reconnect import Reconnector
from pipelines.store.runs import ResumeRefusedError
from pipelines.store.sizes import DEFAULT_MAX_LIST_ITEMS, cap_lists
from pipelines.store.spool import (
    Spool,
    SpoolDamage,
    SpoolError,
    SpoolPendingError,
    pending_spools,
    spool_root,
)
from pipelines.store.spool_flush import record_outage
from pipelines.store.writer_thread import InlineWriter, WriterThread

if TYPE_CHECKING:
    from collections.abc import Callable

    from pymongo.database import Database
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    from crawler.items import PageItem
    from crawler.sources.model import Source
    from pipelines.accounting import RunStatus
    from pipelines.store.model import RunRef

logger = logging.getLogger(__name__)


# Close reasons after which the crawl did not finish but may go on: the run can be resumed.
INTERRUPTIONS = {
    "shutdown": "the crawl was stopped by a signal before it finished",
    "lease_lost": "another crawl took over the source's lease",
}


class _Outage:
    """The database is away: the run's spool, and how far a drain has written it."""

    def __init__(self, spool: Spool, since: datetime) -> None:
        self.spool = spool
        self.since = since
        self.pages = 0
        self.offset = 0


class ArchivePipeline:
    """Writes pages, entities, feedback, rates and events; closes the run with its verdict."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.batch_size = settings.getint("ARCHIVE_BATCH_SIZE", 50)
        self.page_max_age = settings.getfloat("ARCHIVE_PAGE_MAX_AGE", 0.1)
        self.page_batch = settings.getint("ARCHIVE_PAGE_BATCH", 10)
        self.resume = settings.get("ARCHIVE_RESUME_RUN") or None
        self.lease_ttl = settings.getfloat("ARCHIVE_LEASE_TTL", 60.0)
        self.spool_root = Path(settings.get("ARCHIVE_SPOOL_DIR") or spool_root(darkarchive_home()))
        self.reconnect_max_wait = settings.getfloat("ARCHIVE_RECONNECT_MAX_WAIT", 10.0)
        self.drain_chunk = settings.getint("ARCHIVE_SPOOL_DRAIN_CHUNK", 50)
        self.threaded = settings.getbool("ARCHIVE_WRITER_THREAD", True)
        self.writer_queue = settings.getint("ARCHIVE_WRITER_QUEUE", 16)
        self.writer: WriterThread | InlineWriter | None = None
        self.lease: SourceLease | None = None
        self.accounting = RunAccounting()
        self.writes: PageWrites | None = None
        self.outage: _Outage | None = None
        self.reconnector: Reconnector | None = None
        self.stopped: str | None = None  # why nothing more can be kept (a full spool disk)
        self.lost: list[str] = []  # fetched after that: neither stored nor spooled
        self.spooled_pages = 0  # over every outage of this crawl
        self.outage_seconds = 0.0
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

    def _stat(self, key: str, value: Any) -> None:
        """Scrapy's stats belong to the reactor thread; from the writer they go there."""
        set_value = self.crawler.stats.set_value  # type: ignore[union-attr]
        _on_reactor(set_value, f"darkarchive/{key}", value)

    def open_spider(self) -> None:
        try:
            self._open_run()
        except (LeaseHeldError, ResumeRefusedError, SpoolError) as exc:  # refused
            self._stat("refused", str(exc))
            self._not_opened()
            raise
        except (ValueError, PyMongoError) as exc:
            self._stat("open_error", str(exc))
            self._not_opened()
            raise

    def _not_opened(self) -> None:
        if self.writer is not None:
            self.writer.stop()
            self.writer = None
        self._let_go()

    def _open_run(self) -> None:
        source: Source = self.spider.source  # type: ignore[attr-defined]
        self.db: Database
        self.db, self._disconnect = settings_database(self.crawler.settings)
        self.archive = Archive(self.db)
        self.archive.ensure_indexes()
        self._refuse_pending_spool(source.id)
        # One run per source at a time, before a run (and its seq) exists.
        self.lease = SourceLease(self.db, source.id, ttl=self.lease_ttl)
        self.lease.acquire()
        self.parser_version = parser_version(source)
        self.accounting.identity = partial(page_identity, source)
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
                # Regions a page repeats with new bytes on every request: cut out of the
                # digest that tells an unchanged page (pipelines/store/volatile.py).
                "volatile": [region.as_config() for region in source.volatile],
            },
            resume=self.resume,
        )
        self.writes = self._new_writes()
        self.writer = self._new_writer()
        self._stat("run_id", self.run.run_id)
        self.lease.attach_run(self.run.run_id)
        self.lease.keep_renewed(self._lease_lost)
        self.reconnector = Reconnector(
            self.db.client, self._database_back, max_wait=self.reconnect_max_wait
        )
        logger.info("run %s opened (parser %s)", self.run.run_id, self.parser_version)

    def _refuse_pending_spool(self, source: str) -> None:
        """An earlier run's spooled pages go first: a later run would supersede it."""
        for spool in pending_spools(self.spool_root, source):
            spool.lock().unlock()  # SpoolBusyError (refused) while a crawl or flush holds it
            raise SpoolPendingError(
                f"run {spool.run_id} of {source} has pages in its spool ({spool.folder}); "
                f"write them first: darkarchive spool flush --run {spool.run_id}"
            )

    def _new_writes(self) -> PageWrites:
        """A fresh write path (and archive, so nothing queued before an outage lingers)."""
        self.archive = Archive(self.db)

        def failed() -> None:
            self.accounting.archive_failures += 1

        return PageWrites(
            self.archive,
            self.run,
            parser_version=self.parser_version,
            batch_size=self.batch_size,
            on_failure=failed,
            page_max_age=self.page_max_age,
            page_batch=self.page_batch,
        )

    def _new_writer(self) -> WriterThread | InlineWriter:
        if not self.threaded:
            return InlineWriter().start()
        return WriterThread(
            f"archive-writer-{self.run.run_id}",
            on_idle=self._guarded(self._write_queued_pages, "(queued pages)"),
            idle_after=self.page_max_age,
        ).start()

    def _submit(self, fn: Callable[..., Any], *args: Any, what: str) -> Deferred[Any]:
        """Run `fn(*args)` on the writer thread after everything submitted before.

        A failure of ours there (a bug, not the database) is recorded on the run as an
        archive failure, so the run is partial and says why; it never ends the crawl.
        """
        assert self.writer is not None
        return self.writer.submit(self._guarded(fn, what), *args)

    def _guarded(self, fn: Callable[..., Any], what: str) -> Callable[..., Any]:
        def guarded(*args: Any) -> Any:
            try:
                return fn(*args)
            except Exception as exc:
                self._archive_failed(exc, what)
                return None

        return guarded

    def _lease_lost(self, reason: str) -> None:
        """From the renewal thread: another crawl now owns the source; this one stops."""
        from twisted.internet import reactor

        def stop() -> None:
            self._record_event("lease", reason)
            self._close_engine("lease_lost")

        reactor.callFromThread(stop)  # type: ignore[attr-defined]

    def _close_engine(self, reason: str) -> None:
        """On the reactor thread: stop the crawl (once; a closing crawl is left alone)."""
        engine = self.crawler.engine
        if engine is None or engine.spider is None or self._closing is not None:
            return
        self._closing = deferred_from_coro(engine.close_spider_async(reason=reason))

    def _let_go(self) -> None:
        """Stop reconnecting, release the lease (if ours), the spool and the connection."""
        if self.reconnector is not None:
            self.reconnector.stop()
        if self.lease is not None:
            with pymongo.timeout(3.0):  # a dead database must not hold the exit for long
                self.lease.release()
            self.lease = None
        if self.outage is not None:
            self.outage.spool.unlock()
        self._disconnect()
        self._disconnect = lambda: None

    # -- items (reactor thread) ----------------------------------------------------------
    async def process_item(self, item: PageItem) -> PageItem:
        """Hand the page to the writer thread; the crawl goes on at once.

        Up to `ARCHIVE_WRITER_QUEUE` writes may wait; past that the item is answered only
        once written, so Scrapy's scraper slot fills and the engine fetches no more until
        the database catches up: memory stays flat, and a crawl killed outright has at most
        that many more pages to fetch again.
        """
        blueprint = self.spider.source.pages.get(item.state)  # type: ignore[attr-defined]
        cap_lists(item, blueprint.max_list_items if blueprint else DEFAULT_MAX_LIST_ITEMS)
        page = page_record(item)
        item.body = None  # the record holds it until written; the item need not
        written = self._submit(self._store, item, page, what=item.url)
        assert self.writer is not None
        if self.writer.pending > self.writer_queue:
            await maybe_deferred_to_future(written)
        return item

    def _record_event(
        self, kind: str, reason: str, url: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        """What a component (Tor routing, backoff) decided, on the run where it happened;
        written after the pages handed over before it."""
        from twisted.python.threadable import isInIOThread

        if not isInIOThread():  # sent from a component's own thread: take the reactor's turn
            self._later(partial(self._record_event, kind, reason, url, detail))
            return
        if self.writer is None or self.writer.stopped:
            logger.warning("not recorded on a run: %s %s", kind, reason)
            return
        record = event_record(kind, reason, url=url, detail=detail)
        self._submit(self._event, record, what=url or "(a run event)")

    # -- writes (writer thread) ------------------------------------------------------------
    def _store(self, item: PageItem, page: dict[str, Any]) -> None:
        if self.stopped is not None:
            self.lost.append(item.url)
            return
        if self.outage is not None:
            if not self._spool(page, page=True):
                self.lost.append(item.url)
                return
        else:
            assert self.writes is not None
            try:
                self.writes.write(page)
            except Exception as exc:
                if not is_unreachable(exc):  # a store bug: record it, make the run partial
                    self._archive_failed(exc, item.url)
                    return
                self._begin_outage(exc, item.url)
        self.accounting.add(item)

    def _write_queued_pages(self) -> None:
        """The writer has nothing else to do: pages queued for a bulk are written now."""
        if self.outage is not None or self.stopped is not None or self.writes is None:
            return
        try:
            self.writes.write_queued_pages()
        except Exception as exc:
            if not is_unreachable(exc):
                self._archive_failed(exc, "(queued pages)")
                return
            self._begin_outage(exc, "(queued pages)")

    def _event(self, record: dict[str, Any]) -> None:
        if self.stopped is not None:
            logger.warning("not recorded on a run: %s %s", record["kind"], record["reason"])
            return
        url = record.get("url")
        if self.outage is None and self.writes is None:  # the run is closed
            logger.warning("not recorded on a run: %s %s", record["kind"], record["reason"])
            return
        if self.outage is None and self.writes is not None:
            try:
                self.writes.event(record)
                return
            except PyMongoError as exc:
                if not is_unreachable(exc):
                    logger.exception(
                        "could not record on run %s: %s", self.run.run_id, record["reason"]
                    )
                    return
                self._begin_outage(exc, url or "(a run event)")
        self._spool(record)

    def _archive_failed(self, error: Exception, url: str) -> None:
        logger.exception("archiving %s failed", url)
        self.accounting.archive_failures += 1
        reason = f"archiving failed: {type(error).__name__}: {error}"
        try:
            self.archive.record_event(self.run, kind="archive", reason=reason, url=url)
        except Exception:  # the log line above is then the only trace
            logger.exception("could not record the failure of %s on run %s", url, self.run.run_id)

    # -- outages ------------------------------------------------------------------------
    def _begin_outage(self, error: Exception, url: str) -> None:
        """The database is away: spool what is not surely stored, and from now on, every
        page; look for the database in the background."""
        window = self.writes.window if self.writes is not None else []
        self.writes = None
        since = datetime.now(UTC)
        self.outage = _Outage(Spool(self.spool_root / self.run.run_id), since)
        logger.error(
            "archive database unreachable while storing %s (%s: %s); pages go to the spool %s "
            "until it answers again",
            url,
            type(error).__name__,
            error,
            self.outage.spool.folder,
        )
        header = {
            "type": "run",
            "run": self.run.run_id,
            "source": self.run.source,
            "seq": self.run.seq,
            "parser_version": self.parser_version,
            "db": self.db.name,
            "since": since,
        }
        if self._spool(header) and all(self._spool(page, page=True) for page in window):
            assert self.reconnector is not None
            self.reconnector.start()

    def _spool(self, record: dict[str, Any], *, page: bool = False) -> bool:
        """Keep one record in the spool; a full disk stops the crawl (False)."""
        assert self.outage is not None
        if self.stopped is not None:
            return False
        try:
            self.outage.spool.append(record)
        except SpoolError as exc:
            self._stop(str(exc))
            return False
        if page:
            self.outage.pages += 1
        return True

    def _stop(self, why: str) -> None:
        self.stopped = why
        logger.error("%s; stopping the crawl (what is spooled is kept)", why)
        _on_reactor(self._close_engine, "archive_unavailable")

    def _database_back(self) -> None:
        """From the reconnect thread: drain the spool on the writer, a slice at a time."""
        self._later(self._drain_later)

    @staticmethod
    def _later(fn: Callable[[], None]) -> None:
        """Call `fn` on the reactor thread in a later turn of its loop (from any thread)."""
        from twisted.internet import reactor

        reactor.callFromThread(fn)  # type: ignore[attr-defined]

    def _drain_later(self) -> None:
        """Queue the next slice of the spool behind the pages handed over meanwhile (they
        join the spool, so they are written in order)."""
        if self.writer is not None and not self.writer.stopped:
            self._submit(self._drain, what="(the spool)")

    def _drain(self, *, to_the_end: bool = False) -> None:
        """Write the next slice of the spool; at its end, record the outage and go direct."""
        outage = self.outage
        if outage is None or self.stopped is not None:
            return
        if self.writes is None:
            self.writes, outage.offset = self._new_writes(), 0
        try:
            written = 0
            for offset, record in outage.spool.read(outage.offset):
                if isinstance(record, SpoolDamage):
                    self._stop(f"the spool is damaged: {record.describe()}")
                    return
                self._replay(record)
                outage.offset, written = offset, written + 1
                if written >= self.drain_chunk and not to_the_end:
                    self._later(self._drain_later)  # pages handed over meanwhile go first
                    return
            self.writes.checkpoint()
            until = datetime.now(UTC)
            record_outage(self.archive, self.run, outage.since, until, outage.pages)
        except PyMongoError as exc:
            if not is_unreachable(exc):
                self._stop(f"writing the spool failed: {type(exc).__name__}: {exc}")
                return
            logger.warning("the archive database went away again while draining: %s", exc)
            self.writes = None
            assert self.reconnector is not None
            self.reconnector.start()
            return
        outage.spool.remove()
        self.outage = None
        self.spooled_pages += outage.pages
        self.outage_seconds += (until - outage.since).total_seconds()
        logger.warning(
            "the archive database was away for %.1f s: %d spooled page(s) written",
            (until - outage.since).total_seconds(),
            outage.pages,
        )

    def _replay(self, record: dict[str, Any]) -> None:
        """One spooled record through the live write path; a page the store refuses is a
        failure on the run, as it would have been without the outage."""
        assert self.writes is not None
        try:
            self.writes.replay(record)
        except Exception as exc:
            if is_unreachable(exc):
                raise
            self._archive_failed(exc, str(record.get("url") or "(a run event)"))

    # -- closing ------------------------------------------------------------------------
    async def close_spider(self) -> None:
        """The last batch is written after every page handed over (the writer's order)."""
        if self.writer is not None:
            await maybe_deferred_to_future(
                self._submit(self._write_last_batch, what="(final batch)")
            )

    def _write_last_batch(self) -> None:
        if self.stopped is not None:
            return
        if self.outage is not None:
            assert self.reconnector is not None
            self.reconnector.stop()
            try:
                Reconnector.ping(self.db.client)
            except PyMongoError:
                return  # still away: the verdict joins the spool
            self._drain(to_the_end=True)
            return
        assert self.writes is not None
        try:
            self.writes.checkpoint()
        except Exception as exc:
            if is_unreachable(exc):
                self._begin_outage(exc, "(final batch)")
            else:
                self._archive_failed(exc, "(final batch)")

    async def _spider_closed(self, spider: Spider, reason: str) -> None:
        """The verdict needs the close reason, which Scrapy gives only after pipelines close."""
        if self.writer is None:  # the run never opened (refused); nothing to close
            self._let_go()
            return
        refusals = list(getattr(spider, "refusals", []))
        try:
            closed = self._submit(self._finish_run, refusals, reason, what="(closing the run)")
            await maybe_deferred_to_future(closed)
        finally:
            self.writer.stop(timeout=10.0)  # what was queued after the close, if anything

    def _finish_run(self, refusals: list[str], reason: str) -> None:
        try:
            status, reasons = self._verdict(refusals, reason)
            if self.outage is None and self.stopped is None:
                try:
                    self._close_run(status, reasons, refusals)
                except PyMongoError as exc:
                    if not is_unreachable(exc):
                        logger.exception("closing run %s failed", self.run.run_id)
                        self._stat("open_error", f"closing run {self.run.run_id} failed: {exc}")
                        return
                    self._begin_outage(exc, "(closing the run)")
            if self.outage is not None:
                self._keep_verdict(status, reasons, refusals, reason)
            self._stat("spooled_pages", self.spooled_pages)
            self._stat("outage_seconds", round(self.outage_seconds, 1))
        finally:
            self.writes = None  # closed: nothing more is written
            self._let_go()

    def _verdict(self, refusals: list[str], reason: str) -> tuple[RunStatus, list[str]]:
        status, reasons = self.accounting.verdict(refusals, reason)
        if reason in INTERRUPTIONS and not refusals:
            status = "interrupted"
            reasons = [
                f"interrupted: {INTERRUPTIONS[reason]}; resume with "
                f"`darkarchive crawl {self.run.source} --resume {self.run.run_id}`",
                *[r for r in reasons if not r.startswith("crawl stopped early")],
            ]
        return status, reasons

    def _close_run(self, status: RunStatus, reasons: list[str], refusals: list[str]) -> None:
        for refusal in refusals:
            self.archive.record_event(self.run, kind="refused", reason=refusal)
        summary = self.archive.close_run(
            self.run, status=status, counts=self.accounting.counts(), reasons=reasons
        )
        self._stat("run_status", status)
        logger.info(
            "run %s closed: %s%s; %s",
            self.run.run_id,
            status,
            f" ({'; '.join(reasons)})" if reasons else "",
            summary,
        )

    def _keep_verdict(
        self, status: RunStatus, reasons: list[str], refusals: list[str], close_reason: str
    ) -> None:
        """The run cannot be closed in a dead database: the spool keeps its verdict."""
        assert self.outage is not None
        verdict = {
            "type": "verdict",
            "status": status,
            "reasons": reasons,
            "refusals": refusals,
            "counts": self.accounting.counts(),
            "close_reason": close_reason,
        }
        stopped = self.stopped
        kept = stopped is None and self._spool(verdict)
        folder = self.outage.spool.folder
        self._stat("run_status", "spooled" if kept else "spool_full")
        self._stat("spool", str(folder))
        self._stat("lost_pages", len(self.lost))
        self._stat("spool_error", stopped or self.stopped or "")
        logger.error(
            "run %s left open: the archive database is unreachable; %d page(s) kept in %s%s",
            self.run.run_id,
            self.outage.pages,
            folder,
            "" if kept else f", {len(self.lost)} not kept ({stopped or self.stopped})",
        )


def _on_reactor(fn: Callable[..., Any], *args: Any) -> None:
    """Call `fn` on the reactor thread: now if this is it, else as soon as it can."""
    from twisted.internet import reactor
    from twisted.python.threadable import isInIOThread

    if isInIOThread():
        fn(*args)
    else:
        reactor.callFromThread(fn, *args)  # type: ignore[attr-defined]
