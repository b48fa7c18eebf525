"""Run one or more crawls in this process, one after another, on one reactor."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy.crawler import CrawlerRunner
from scrapy.utils.log import configure_logging
from scrapy.utils.project import get_project_settings
from scrapy.utils.reactor import install_reactor

from crawler.spiders.market import MarketSpider

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from scrapy.settings import Settings


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
    """Run the jobs in order and return each crawl's final stats."""
    install_reactor(settings["TWISTED_REACTOR"])
    from twisted.internet import defer, reactor

    configure_logging(settings)
    runner = CrawlerRunner(settings)
    results: list[dict[str, Any]] = []
    failures: list[BaseException] = []

    @defer.inlineCallbacks
    def sequence():  # type: ignore[no-untyped-def]
        try:
            for job in jobs:
                if job.before is not None:
                    job.before()
                crawler = runner.create_crawler(MarketSpider)
                yield runner.crawl(crawler, source=job.source, mirror=job.mirror)
                results.append(crawler.stats.get_stats() if crawler.stats else {})
        except BaseException as exc:  # surfaced after the reactor stops
            failures.append(exc)
        finally:
            reactor.stop()  # type: ignore[attr-defined]

    reactor.callWhenRunning(sequence)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined, misc]
    if failures:
        raise failures[0]
    return results
