"""Passive and fail-closed: media and onion requests the source did not enable never leave."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.utils.test import get_crawler

from crawler.middlewares.content_types import ContentTypeGuard, RefusedContent
from crawler.middlewares.onion_guard import OnionGuard, RefusedOnion
from crawler.spiders.market import MarketSpider


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://m.test/photo/l1.jpg", True),
        ("http://m.test/files/catalogue.PDF", True),
        ("http://m.test/video.mp4?x=1", True),
        ("http://m.test/listing/l1", False),
        ("http://m.test/listing/l1.html", False),
        ("http://m.test/category/a?page=2", False),
    ],
)
def test_media_links_are_refused_before_any_request(url: str, refused: bool) -> None:
    crawler = get_crawler(MarketSpider)
    guard = ContentTypeGuard.from_crawler(crawler)
    if refused:
        with pytest.raises(RefusedContent, match="files are not enabled"):
            guard.process_request(Request(url))
    else:
        assert guard.process_request(Request(url)) is None


@pytest.mark.parametrize(
    ("url", "proxy", "refused"),
    [
        ("http://abcdefghijklmnop.onion/listing/1", None, True),
        ("http://ABCDEFGHIJKLMNOP.ONION./", None, True),
        ("http://abcdefghijklmnop.onion/", "http://127.0.0.1:8118", True),
        ("http://abcdefghijklmnop.onion/", "socks5h://src:x@127.0.0.1:9050", False),
        ("http://127.0.0.1:8800/", None, False),
    ],
)
def test_onion_requests_never_leave_without_tor(url: str, proxy: str | None, refused: bool) -> None:
    request = Request(url, meta={"proxy": proxy} if proxy else {})
    if refused:
        with pytest.raises(RefusedOnion, match="an onion host needs Tor"):
            OnionGuard().process_request(request)
    else:
        assert OnionGuard().process_request(request) is None
