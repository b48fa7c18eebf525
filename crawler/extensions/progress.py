"""Progress of a long crawl: pages fetched against pages expected, by state, with an ETA.

A crawl of a real market over Tor takes hours. On a terminal this draws a live bar (rich);
elsewhere (cron, systemd, a log file) it writes a plain line every `PROGRESS_INTERVAL`
seconds. "Expected" is what the crawl knows so far: every page linked, or the market's own
totals ("1,204 listings") when those say more.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

    from crawler.items import PageItem

logger = logging.getLogger(__name__)


class CrawlTally:
    """What the progress display needs, counted from the pages the spider hands on."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.by_state: Counter[str] = Counter()
        self.seen: set[str] = set()
        self.index_pages: set[str] = set()
        self.linked: dict[str, set[str]] = {"index": set(), "listing": set(), "vendor": set()}
        self.totals: dict[str, int] = {}

    def add(self, item: PageItem) -> None:
        self.by_state[item.state] += 1
        self.seen.add(item.url)
        if item.kind == "index":
            self.index_pages.add(item.url)
        for rule, urls in item.links.items():
            self.linked["index" if rule == "pagination" else rule].update(urls)
        for key in ("listing_total", "vendor_total"):
            if key in item.expected:
                self.totals[key] = max(self.totals.get(key, 0), item.expected[key])

    @property
    def fetched(self) -> int:
        return sum(self.by_state.values())

    @property
    def expected(self) -> int:
        listings = max(len(self.linked["listing"]), self.totals.get("listing_total", 0))
        vendors = max(len(self.linked["vendor"]), self.totals.get("vendor_total", 0))
        known = self.seen | self.linked["index"] | self.linked["listing"] | self.linked["vendor"]
        index = len(self.index_pages | self.linked["index"])
        return max(len(known), index + listings + vendors)

    def eta(self) -> float | None:
        """Seconds left at the rate so far, or None before there is a rate."""
        elapsed = time.monotonic() - self.started
        if self.fetched < 2 or elapsed <= 0:
            return None
        return max(0, self.expected - self.fetched) / (self.fetched / elapsed)

    def states(self) -> str:
        return ", ".join(f"{state} {n}" for state, n in sorted(self.by_state.items()))

    def line(self, source: str) -> str:
        eta = self.eta()
        rate = self.fetched / max(time.monotonic() - self.started, 1e-9) * 60
        left = f", about {eta:.0f} s left" if eta is not None else ""
        return (
            f"{source}: {self.fetched} of ~{self.expected} pages ({self.states()}), "
            f"{rate:.0f} pages/min{left}"
        )


class CrawlProgress:
    """Extension: a live bar on a terminal (`PROGRESS_LIVE`), else periodic log lines."""

    def __init__(self, crawler: Crawler, interval: float, live: bool) -> None:
        self.crawler = crawler
        self.interval = interval
        self.live = live
        self.tally = CrawlTally()
        self._last = time.monotonic()
        self._bar: Any = None
        self._task: Any = None
        crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        settings = crawler.settings
        if not settings.getbool("PROGRESS_ENABLED", True):
            raise NotConfigured
        live = settings.getbool("PROGRESS_LIVE", sys.stderr.isatty())
        return cls(crawler, settings.getfloat("PROGRESS_INTERVAL", 30.0), live)

    def _source(self) -> str:
        return getattr(getattr(self.crawler.spider, "source", None), "id", "crawl")

    def spider_opened(self, spider: Spider) -> None:
        if not self.live:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[states]}"),
            console=Console(stderr=True),  # stdout stays the run's summary, for scripts
        )
        self._task = self._bar.add_task(self._source(), total=None, states="")
        self._bar.start()

    def item_scraped(self, item: Any, spider: Spider) -> None:
        if not hasattr(item, "links"):
            return
        self.tally.add(item)
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=self.tally.fetched,
                total=self.tally.expected,
                states=self.tally.states(),
            )
        elif time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            logger.info("%s", self.tally.line(self._source()))

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        logger.info("%s (done: %s)", self.tally.line(self._source()), reason)
