"""Run one or more crawls in this process, one after another, on one reactor."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy.crawler import CrawlerRunner
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.log import configure_logging
from scrapy.utils.project import get_project_settings
from scrapy.utils.reactor import install_reactor

from crawler import exit_codes
from crawler.spiders.market import MarketSpider

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

logger = logging.getLogger(__name__)

# Stats the archive pipeline sets when a crawl could not open its run (a held lease, a
# refused resume, an unreachable database): an answer for the caller, not a crash.
NOT_OPENED = ("darkarchive/refused", "darkarchive/open_error")
# Seconds the forced path may spend closing the run in the database before it exits anyway.
FORCE_RECORD_TIMEOUT = 5.0


@dataclass(frozen=True)
class CrawlJob:
    """One crawl; `before` runs just before it starts (the demo moves its market a day)."""

    source: str
    mirror: str = ""
    before: Callable[[], None] | None = None


def crawl_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Project settings plus the CLI's overrides; no secret ever goes in here (it is logged)."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    settings = get_project_settings()
    for key, value in (overrides or {}).items():
        settings.set(key, value, priority="cmdline")
    return settings


def run_crawls(jobs: Sequence[CrawlJob], settings: Settings) -> list[dict[str, Any]]:
    """Run the jobs in order and return each crawl's final stats.

    SIGTERM (systemd, `timeout`) and SIGINT stop the crawl cleanly: requests in flight
    finish, pending items are written and the run closes as `interrupted`, ready to be
    resumed. If that clean stop has not finished `SHUTDOWN_FORCE_AFTER` seconds later (a
    page object or a pattern holding the crawl's thread, a hung request), or at a second
    signal, a watchdog thread closes the run as `interrupted` in the database and the
    process exits with code 6 at once; pages fetched but not yet written are fetched again
    on `--resume`.
    """
    install_reactor(settings["TWISTED_REACTOR"])
    from twisted.internet import defer, reactor

    configure_logging(settings)
    runner = CrawlerRunner(settings)
    results: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    signals_seen: list[int] = []
    current: list[Crawler] = []
    finished: list[bool] = []
    force_after = settings.getfloat("SHUTDOWN_FORCE_AFTER", 15.0)
    watchdogs: list[threading.Timer] = []

    def force_later(name: str, delay: float) -> None:
        def force() -> None:
            if not finished:
                _force_exit(current[-1] if current else None, name, delay)

        timer = threading.Timer(delay, force)
        timer.name, timer.daemon = "darkarchive-stop-watchdog", True
        timer.start()
        watchdogs.append(timer)

    def stop_when_running() -> None:
        """Stop the crawl once its engine runs: a signal may come while it is still opening,
        when Scrapy's own stop would be a no-op and the crawl would then run to its end."""
        if finished:
            return
        engine = current[-1].engine if current and current[-1].engine is not None else None
        if engine is not None and engine.running:
            deferred_from_coro(engine.stop_async())
            return
        reactor.callLater(0.1, stop_when_running)  # type: ignore[attr-defined, arg-type]

    def on_signal(signum: int, _frame: Any) -> None:
        signals_seen.append(signum)
        name = signal.Signals(signum).name
        if len(signals_seen) == 1:
            logger.warning(
                "%s received: stopping the crawl cleanly (forced after %g s, or again)",
                name,
                force_after,
            )
            reactor.callFromThread(stop_when_running)  # type: ignore[attr-defined]
            force_later(name, force_after)
        else:
            logger.error("%s received again: stopping now", name)
            force_later(name, 0.0)

    @defer.inlineCallbacks
    def sequence():  # type: ignore[no-untyped-def]
        try:
            for job in jobs:
                if signals_seen:
                    break
                if job.before is not None:
                    job.before()
                crawler = runner.create_crawler(MarketSpider)
                current.append(crawler)
                try:
                    yield runner.crawl(crawler, source=job.source, mirror=job.mirror)
                except Exception:
                    stats = crawler.stats.get_stats() if crawler.stats else {}
                    if not any(key in stats for key in NOT_OPENED):
                        raise
                    results.append(stats)  # the caller says in one line why it did not run
                    break
                results.append(crawler.stats.get_stats() if crawler.stats else {})
        except BaseException as exc:  # surfaced after the reactor stops
            failures.append(exc)
        finally:
            finished.append(True)
            if reactor.running:  # type: ignore[attr-defined]
                reactor.stop()  # type: ignore[attr-defined]

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        reactor.callWhenRunning(sequence)  # type: ignore[attr-defined]
        reactor.run(installSignalHandlers=False)  # type: ignore[attr-defined, misc, call-arg]
    finally:
        finished.append(True)
        for timer in watchdogs:
            timer.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failures:
        raise failures[0]
    return results


def _force_exit(crawler: Crawler | None, signal_name: str, waited: float) -> None:
    """The clean stop did not finish: close the run as `interrupted` and exit with code 6.

    Runs on the watchdog thread, so it works while the crawl's own thread is held. The
    database gets `FORCE_RECORD_TIMEOUT` seconds; a run it could not close is still closed
    as `interrupted` by the next command (its crawler's PID is gone).
    """
    stats = crawler.stats if crawler is not None and crawler.stats is not None else None
    run_id = stats.get_value("darkarchive/run_id") if stats is not None else None
    how = "a second signal" if waited == 0 else f"the clean stop had not ended after {waited:g} s"
    logger.error("%s: %s; ending the crawl now", signal_name, how)
    if crawler is not None and run_id:
        source = str(run_id).split(":")[0]
        reason = (
            f"interrupted: {signal_name}, stopped by force ({how}); resume with "
            f"`darkarchive crawl {source} --resume {run_id}`"
        )
        recorder = threading.Thread(
            target=_record_interrupted, args=(crawler, str(run_id), reason), daemon=True
        )
        recorder.start()
        recorder.join(FORCE_RECORD_TIMEOUT)
        print(f"run {run_id}: interrupted ({how})", flush=True)
        print(f"resume with: darkarchive crawl {source} --resume {run_id}", file=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_codes.INTERRUPTED)


def _record_interrupted(crawler: Crawler, run_id: str, reason: str) -> None:
    from pipelines.store.connect import settings_database
    from pipelines.store.runs import mark_interrupted

    try:
        db, close = settings_database(crawler.settings)
        try:
            mark_interrupted(db, run_id, reason)
        finally:
            close()
    except Exception:
        logger.exception("run %s could not be closed as interrupted", run_id)
