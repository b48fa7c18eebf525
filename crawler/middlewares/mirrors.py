"""When a mirror dies mid-crawl, carry on with the next one instead of losing the crawl.

Markets run several mirrors because mirrors die. A request that could not even connect (or
timed out) after Scrapy's own retries moves the spider to the next live mirror and is sent
there, path unchanged; later requests follow (the spider rewrites links to the mirror in
use). The request fingerprint ignores which mirror a URL names, so a page fetched on one
mirror is not fetched again on another; the moved request itself bypasses that filter (it
is the same page, not yet fetched) and moves at most once per mirror. Each switch is a run
event.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
)
from scrapy.utils.request import RequestFingerprinter
from twisted.internet.error import ConnectionRefusedError as TwistedRefused
from twisted.internet.error import TCPTimedOutError, TimeoutError

from crawler.signals import record_run_event
from crawler.urls import canonical_url

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

UNREACHABLE = (
    ConnectionRefusedError,
    TwistedRefused,
    TCPTimedOutError,
    TimeoutError,
    DownloadTimeoutError,
    DownloadConnectionRefusedError,
    CannotResolveHostError,
)


class MirrorFailover:
    """Downloader middleware; its `process_exception` runs after the retry middleware gave up."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.dead: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MirrorFailover:
        return cls(crawler)

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        spider = self.crawler.spider
        mirrors: list[str] = getattr(spider, "mirrors", [])
        if len(mirrors) < 2 or not isinstance(exception, UNREACHABLE):
            return None
        failed = _mirror_of(request.url, mirrors)
        if failed is None:
            return None
        if failed == spider.mirror:  # type: ignore[union-attr]
            self.dead.add(failed)
            alive = [m for m in mirrors if m not in self.dead]
            if not alive:
                self._record(f"every mirror is unreachable, the last {failed}", request.url)
                return None
            spider.mirror = alive[0]  # type: ignore[union-attr]
            self._record(
                f"mirror {failed} unreachable ({type(exception).__name__}); "
                f"switching to {alive[0]}",
                request.url,
            )
            logger.warning("mirror %s unreachable; switching to %s", failed, alive[0])
        elif spider.mirror in self.dead:  # type: ignore[union-attr]
            return None
        moves = request.meta.get("mirror_moves", 0)
        if moves >= len(mirrors):  # every mirror had its chance: never a loop between them
            return None
        moved: str = spider.on_mirror(request.url)  # type: ignore[union-attr]
        meta = {k: v for k, v in request.meta.items() if k != "retry_times"}
        meta["mirror_moves"] = moves + 1
        # The fingerprint ignores the mirror, so the moved request is its own duplicate:
        # without dont_filter the scheduler drops it silently (a crawl with `retries: 0`
        # and a dead first mirror then fetched nothing at all).
        return request.replace(url=moved, meta=meta, dont_filter=True)

    def _record(self, reason: str, url: str) -> None:
        record_run_event(self.crawler, "mirror", reason, url)


def _mirror_of(url: str, mirrors: list[str]) -> str | None:
    parts = urlparse(url)
    for mirror in mirrors:
        base = urlparse(mirror)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return mirror
    return None


class MirrorBlindFingerprinter:
    """Request fingerprints that name the source's mirrors as one host, and ignore the
    query parameters the source says do not identify a page."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.default = RequestFingerprinter(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MirrorBlindFingerprinter:
        return cls(crawler)

    def fingerprint(self, request: Request) -> bytes:
        source = getattr(self.crawler.spider, "source", None)
        params = source.urls.query_params if source is not None else None
        if params is not None:  # tracking parameters do not make another page
            request = request.replace(url=canonical_url(request.url, params))
        mirrors: list[str] = getattr(self.crawler.spider, "mirrors", [])
        if len(mirrors) > 1 and _mirror_of(request.url, mirrors) is not None:
            parts = urlparse(request.url)
            canonical = parts._replace(scheme="mirror", netloc="mirror").geturl()
            return self.default.fingerprint(request.replace(url=canonical))
        return self.default.fingerprint(request)
