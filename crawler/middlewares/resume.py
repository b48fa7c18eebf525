"""Resume without refetching: a page the resumed run already archived is read back from it.

The crawl walks the market again from its start pages, so every link is followed exactly as
in an uninterrupted crawl, but a page whose response the run archived comes from the
archive (with the time it was first fetched) instead of the network. That works after
SIGTERM and after SIGKILL alike, with no scheduler state on disk to go stale: the archive
is the frontier. Pages that ended in an error or a challenge are fetched again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse

from pipelines.store.connect import settings_database
from pipelines.store.run_pages import page_body, run_pages

if TYPE_CHECKING:
    from collections.abc import Callable

    from pymongo.database import Database
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# States whose archived response is what a new fetch would be worth reading again.
REUSABLE_STATES = frozenset({"index", "listing", "vendor", "not_found", "other"})
# Transport headers of the original response: the archived body is already decoded.
DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class ResumeFromArchive:
    """Downloader middleware, on only when `ARCHIVE_RESUME_RUN` names a run."""

    def __init__(self, crawler: Crawler, run_id: str) -> None:
        self.crawler = crawler
        self.run_id = run_id
        self.archived: dict[str, dict[str, Any]] = {}
        self.db: Database | None = None
        self._disconnect: Callable[[], None] = lambda: None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ResumeFromArchive:
        run_id = crawler.settings.get("ARCHIVE_RESUME_RUN")
        if not run_id:
            raise NotConfigured
        return cls(crawler, run_id)

    def spider_opened(self, spider: Spider) -> None:
        self.db, self._disconnect = settings_database(self.crawler.settings)
        fields = (
            *("url", "state", "sha256", "status", "headers", "fetched_at", "redirected_from"),
            "body",  # a packed page's body document, read with its record
        )
        for page in run_pages(self.db, self.run_id, fields):
            if page.get("state") in REUSABLE_STATES and page.get("sha256"):
                for url in (page["url"], *(page.get("redirected_from") or ())):
                    self.archived[url] = page
        logger.info(
            "resuming %s: %d archived page(s) to read back", self.run_id, len(self.archived)
        )

    def spider_closed(self, spider: Spider) -> None:
        self._disconnect()

    def process_request(self, request: Request) -> HtmlResponse | None:
        page = self.archived.pop(request.url, None)  # once: a retry of it goes to the network
        if page is None or self.db is None:
            return None
        try:
            body = page_body(self.db, page)
        except (KeyError, ValueError) as exc:  # a body lost with the crash: fetch it again
            logger.warning("archived page %s unreadable (%s); fetching it again", request.url, exc)
            return None
        headers = {k: v for k, v in (page.get("headers") or {}).items() if k not in DROPPED_HEADERS}
        request.meta["archived_fetched_at"] = page["fetched_at"]
        self.crawler.stats.inc_value("darkarchive/pages_from_archive")  # type: ignore[union-attr]
        return HtmlResponse(
            url=page["url"],  # where a redirect had led
            status=page.get("status") or 200,
            headers=headers,
            body=body,
            request=request,
            flags=["archived"],
        )
