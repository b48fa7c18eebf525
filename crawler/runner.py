"""Run one or more crawls in this process, one after another, on one reactor."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy.crawler import CrawlerRunner
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.log import configure_logging
from scrapy.utils.project import get_project_settings
from scrapy.utils.reactor import install_reactor

from crawler.spiders.market import MarketSpider

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

logger = logging.getLogger(__name__)

# Stats the archive pipeline sets when a crawl could not open its run (a held lease, a
# refused resume, an unreachable database): an answer for the caller, not a crash.
NOT_OPENED = ("darkarchive/refused", "darkarchive/open_error")


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
    resumed. A second signal stops at once; the next command then finds the run's crawler
    dead and closes the run itself.
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
            logger.warning("%s received: stopping the crawl cleanly (again to force)", name)
            reactor.callFromThread(stop_when_running)  # type: ignore[attr-defined]
        else:
            logger.error("%s received again: stopping now, the run stays open", name)
            reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined, misc]

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
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failures:
        raise failures[0]
    return results
