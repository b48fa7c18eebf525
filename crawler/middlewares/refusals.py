"""Every request the crawl refuses leaves a run event saying what and why.

Scrapy refuses some requests safely but only says so at DEBUG: an off-site link or
redirect (169.254.169.254, `file:`, `data:`, another host) is dropped while it is being
scheduled, and a redirect loop ends in the duplicate filter. Neither reaches the spider's
errback, so the run had no trace of them. `RecordedOffsite` replaces Scrapy's offsite
middleware with one that records its refusals; it also records a redirect to a scheme
Scrapy will not follow, and a redirect dropped as a duplicate (a loop, or a page the run
already has).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Self

from scrapy import signals
from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.httpobj import urlparse_cached

from crawler.signals import record_run_event

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _chain(request: Request) -> str:
    return " -> ".join([*request.meta.get("redirect_urls", []), request.url])


class RecordedOffsite(OffsiteMiddleware):
    """Scrapy's offsite policy, unchanged, with each refusal on the run."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        middleware = super().from_crawler(crawler)
        crawler.signals.connect(middleware.request_dropped, signal=signals.request_dropped)
        return middleware

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        try:
            super().process_request(request)
        except IgnoreRequest:
            scheme = urlparse_cached(request).scheme
            if scheme not in ("http", "https"):
                why = f"a {scheme or 'schemeless'}: URL is never fetched"
            else:
                why = f"host {urlparse_cached(request).hostname!r} is not one of the source's"
            via = f" (redirected: {_chain(request)})" if request.meta.get("redirect_urls") else ""
            reason = f"refused {request.url[:300]}: {why}{via}"
            logger.info("%s", reason)
            record_run_event(self.crawler, "refused", reason, request.url[:2000])
            raise

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        """A redirect Scrapy did not follow (another scheme) reaches the spider: say why."""
        location = response.headers.get(b"Location")
        if response.status in REDIRECTS and location:
            target = location.decode("latin-1")
            scheme = target.split(":", 1)[0].lower() if ":" in target else ""
            if scheme and scheme.isalpha() and scheme not in ("http", "https"):
                reason = f"refused redirect from {request.url} to {target[:300]}: not http(s)"
                logger.info("%s", reason)
                record_run_event(self.crawler, "refused", reason, request.url)
        return response

    def request_dropped(self, request: Request) -> None:
        """The duplicate filter dropped a redirect's target: a loop, or a page already had."""
        earlier = request.meta.get("redirect_urls")
        if not earlier:
            return  # an ordinary link to a page already queued: nothing is lost
        if request.url in earlier:
            reason = f"refused a redirect loop: {_chain(request)}"
        else:
            reason = (
                f"redirect {_chain(request)} leads to a page this run already has; "
                "not fetched again"
            )
        logger.info("%s", reason)
        record_run_event(self.crawler, "refused", reason, earlier[0])
