"""The one spider: walks a source as its definition says. Navigation only."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urljoin, urlparse

import scrapy
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest, StopDownload
from twisted.internet.defer import CancelledError

from crawler.items import PageItem
from crawler.middlewares.onion_guard import is_onion
from crawler.pages import read_page
from crawler.pagestate import RATES_STATE
from crawler.session import session_cookies
from crawler.session_store import load_session
from crawler.sources.loader import load_source
from crawler.urls import page_identity

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure

    from crawler.sources.model import Source

logger = logging.getLogger(__name__)

FOLLOW_KIND = {"index": "index", "pagination": "index", "listing": "listing", "vendor": "vendor"}


class MarketSpider(scrapy.Spider):
    """`scrapy crawl market -a source=<id> [-a mirror=URL[,URL…]]`."""

    name = "market"
    source: Source
    mirror: str  # the one in use; the failover middleware moves on when it dies
    mirrors: list[str]
    allowed_domains: list[str]
    mirror_hosts: set[str]

    def __init__(self, source: str = "", mirror: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not source:
            raise ValueError("which source? pass -a source=<id> (a file in config/sources/)")
        self.source_id = source
        self.mirror_override = [m.strip().rstrip("/") for m in mirror.split(",") if m.strip()]
        self.refusals: list[str] = []
        # Identities (crawler/urls.py) of the pages asked for in this run: a link every page
        # repeats (the header's categories) or a listing under a second URL is dropped here,
        # before a request, the spider middlewares and the fingerprint cost anything.
        self.requested: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> MarketSpider:
        spider: MarketSpider = super().from_crawler(crawler, *args, **kwargs)
        spider.source = load_source(spider.source_id)
        spider.mirrors = spider.mirror_override or list(spider.source.mirrors)
        spider.mirror = spider.mirrors[0]
        spider.allowed_domains = [urlparse(m).hostname or "" for m in spider.mirrors]
        spider.mirror_hosts = {urlparse(m).netloc for m in spider.mirrors}
        if spider.source.network == "tor":
            spider.allowed_domains += spider.source.tor.allow_hosts
            handler = crawler.settings.get("TOR_DOWNLOAD_HANDLER")
            handlers = {"http": handler, "https": handler}
            crawler.settings.set("DOWNLOAD_HANDLERS", handlers, priority="spider")
        stored = load_session(spider.source.id)
        if stored is not None and stored.user_agent:  # the cookie works with its browser's UA
            crawler.settings.set("USER_AGENT", stored.user_agent, priority="spider")
        polite = spider.source.politeness
        for key, value in {
            "CONCURRENT_REQUESTS_PER_DOMAIN": polite.concurrency,
            "DOWNLOAD_DELAY": polite.delay,
            "DOWNLOAD_TIMEOUT": polite.timeout,
            "RETRY_TIMES": polite.retries,
            "CLOSESPIDER_PAGECOUNT": polite.max_pages,
        }.items():
            crawler.settings.set(key, value, priority="spider")
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        onions = [m for m in self.mirrors if is_onion(m)]
        if onions and self.source.network != "tor":
            self._refuse(
                f"mirror {onions[0]} is an onion service; {self.source.id} is not a Tor source"
            )
            return
        if self.source.network == "tor":
            # Fail closed: without a working Tor nothing is sent, not even a DNS query.
            settings = self.crawler.settings
            unavailable = settings.get("TOR_UNAVAILABLE") or (
                "" if settings.get("TOR_SOCKS") else "Tor is not configured for this crawl"
            )
            if unavailable:
                self._refuse(f"source {self.source.id} is a Tor source: {unavailable}")
                return
        stored = load_session(self.source.id)
        if stored is not None and stored.status == "expired":
            # Paused: asking again with a dead session only collects login pages.
            self._refuse(
                f"source {self.source.id} is paused: its stored session expired "
                f"({stored.note}); set a fresh one with `darkarchive session set "
                f"{self.source.id}` or check it with `darkarchive session check "
                f"{self.source.id}`"
            )
            # A refusal, not a failure of the market: the exit code tells a scheduler.
            self.crawler.stats.set_value("darkarchive/refused", self.refusals[-1])  # type: ignore[union-attr]
            return
        cookies = session_cookies(self.source)
        if self.source.rates_page:
            # The rates page alone first; the start pages follow once it is answered (or
            # failed), so the run's rates are recorded before any listing is even asked for.
            url = urljoin(self.mirror + "/", self.source.rates_page.lstrip("/"))
            yield self._request(url, RATES_STATE, cookies)
            return
        for request in self._start_requests(cookies):
            yield request

    def _start_requests(self, cookies: dict[str, str] | None = None) -> Iterator[scrapy.Request]:
        for page in self.source.start_pages:
            url = urljoin(self.mirror + "/", page.lstrip("/"))
            self.requested.add(page_identity(self.source, "index", url))
            yield self._request(url, "index", cookies)

    def _refuse(self, reason: str) -> None:
        """Nothing is fetched; the run closes `failed` with this reason."""
        self.refusals.append(f"{reason}: nothing was fetched")
        logger.error("%s", self.refusals[-1])

    def on_mirror(self, url: str) -> str:
        """`url` moved to the mirror in use, if it points at another mirror of the source."""
        parts = urlparse(url)
        for mirror in self.mirrors:
            base = urlparse(mirror)
            if (parts.scheme, parts.netloc) == (base.scheme, base.netloc) and mirror != self.mirror:
                current = urlparse(self.mirror)
                return parts._replace(scheme=current.scheme, netloc=current.netloc).geturl()
        return url

    def _request(
        self, url: str, kind: str, cookies: dict[str, str] | None = None
    ) -> scrapy.Request:
        return scrapy.Request(
            self.on_mirror(url),
            callback=self.parse_page,
            errback=self.on_error,
            cookies=cast("dict[str | bytes, str | bytes | bool | float | int]", cookies or {}),
            meta={"kind": kind},
        )

    def parse_page(self, response: Response) -> Iterator[PageItem | scrapy.Request]:
        # A page a resumed run had archived is read back with the time it was fetched.
        fetched_at = response.meta.get("archived_fetched_at")
        try:
            item = read_page(self.source, response, response.meta["kind"], fetched_at=fetched_at)
        except Exception as exc:  # a pattern out of time, a bug: the page is recorded, not lost
            logger.exception("reading %s failed", response.url)
            yield self._unread(response, exc)
            if response.meta.get("kind") == RATES_STATE:
                yield from self._start_requests(session_cookies(self.source))
            return
        yield item
        if response.meta["kind"] == RATES_STATE:
            yield from self._start_requests(session_cookies(self.source))
            return
        for rule, urls in item.links.items():
            if rule == "pagination" and not (item.links.get("listing") or item.links.get("vendor")):
                continue  # a "next" page with nothing on it: the end, or a pagination trap
            kind = FOLLOW_KIND[rule]
            for url in urls:
                # Off-site links go on to the guards that refuse and record them.
                on_site = urlparse(url).netloc in self.mirror_hosts
                identity = page_identity(self.source, kind, url) if on_site else url
                if identity in self.requested:  # asked already, maybe under another URL
                    self.crawler.stats.inc_value(f"darkarchive/{kind}_links_already_asked")  # type: ignore[union-attr]
                    continue
                self.requested.add(identity)
                yield self._request(url, kind)

    def _unread(self, response: Response, error: Exception) -> PageItem:
        """A page that was fetched but could not be read: archived, with the reason."""
        return PageItem(
            source=self.source.id,
            url=response.url,
            kind=response.meta.get("kind", "index"),
            state="error",
            status=response.status,
            fetched_at=datetime.now(UTC),
            body=response.body,
            error=f"page not read: {type(error).__name__}: {error}",
        )

    def on_error(self, failure: Failure) -> Iterator[PageItem | scrapy.Request]:
        """A page we could not (or would not) fetch is still a page of the run: record why.

        A failed rates page is recorded too (the run's USD values then fall back to the
        project rate table), and the crawl goes on from the start pages.
        """
        yield self._failed(failure)
        if failure.request.meta.get("kind") == RATES_STATE:  # type: ignore[attr-defined]
            yield from self._start_requests(session_cookies(self.source))

    def _failed(self, failure: Failure) -> PageItem:
        request = failure.request  # type: ignore[attr-defined]
        error = failure.value
        state, status = "error", None
        reason = f"{type(error).__name__}: {failure.getErrorMessage()}"
        if isinstance(error, (CancelledError, DownloadCancelledError)) and not str(error):
            # Scrapy cancels a body that grows past DOWNLOAD_MAXSIZE without a message.
            limit = request.meta.get("download_maxsize", self.settings.getint("DOWNLOAD_MAXSIZE"))
            reason = (
                f"download of {request.url} cut off: the body grew past DOWNLOAD_MAXSIZE "
                f"({limit} bytes), or the crawl was stopping"
            )
        elif isinstance(error, IgnoreRequest):  # a guard refused it: content type, Tor policy
            state, reason = "other", str(error)
        elif isinstance(error, StopDownload) and error.response is not None:
            state, status = "other", error.response.status
            raw_type = error.response.headers.get(b"Content-Type") or b""
            content_type = raw_type.decode("latin-1")
            reason = f"refused {request.url}: content type {content_type} is not enabled"
        return PageItem(
            source=self.source.id,
            url=request.url,
            kind=request.meta.get("kind", "index"),
            state=state,
            status=status,
            fetched_at=datetime.now(UTC),
            error=reason,
        )
