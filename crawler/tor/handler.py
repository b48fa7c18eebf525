"""The download handler of Tor sources: Scrapy's httpx handler, which speaks SOCKS5."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.core.downloader.handlers._httpx import HttpxDownloadHandler

from crawler.tor.socks_errors import teach_socks_client

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


class TorDownloadHandler(HttpxDownloadHandler):
    """Scrapy's default handler cannot use a SOCKS proxy; this one can, and it reports
    Tor's extended SOCKS errors (0xF0–0xF7) by name instead of as a malformed reply."""

    def __init__(self, crawler: Crawler) -> None:
        teach_socks_client()
        super().__init__(crawler)
