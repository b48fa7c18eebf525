"""Every request of a Tor source goes through Tor, or nowhere.

Each request gets the `socks5h://` proxy (the host name is resolved by Tor, never by the
local resolver) with the source's SOCKS username, so that Tor's `IsolateSOCKSAuth` keeps
the source on circuits of its own. A Tor source's request to a non-onion host (a redirect
off the market, a link to a clearnet page) is refused unless the source allows that host,
and even then it goes through Tor.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest

from crawler.middlewares.onion_guard import is_onion
from crawler.tor.endpoint import TorEndpoint

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


class RefusedByTorPolicy(IgnoreRequest):
    """A request a Tor source may not make: no Tor, or a host it does not allow."""


class TorRouting:
    """Downloader middleware, before the onion guard (which checks what this one sets)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.endpoint = TorEndpoint.from_settings(crawler.settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TorRouting:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        source = getattr(self.crawler.spider, "source", None)
        if source is None or source.network != "tor":
            return
        if self.endpoint is None:
            raise RefusedByTorPolicy(f"refused {request.url}: Tor is not configured for this crawl")
        host = (urlsplit(request.url).hostname or "").rstrip(".").lower()
        if not is_onion(request.url) and host not in source.tor.allow_hosts:
            raise RefusedByTorPolicy(
                f"refused {request.url}: {host} is not an onion host and source {source.id} "
                "does not allow it (tor.allow_hosts)"
            )
        request.meta["proxy"] = self.endpoint.proxy_for(source.socks_username)
        request.meta["tor"] = True
