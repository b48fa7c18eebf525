"""HTML only by default: media links are never requested, media responses never downloaded."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.utils.test import get_crawler

from crawler.middlewares.content_types import ContentTypeGuard, RefusedContent
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
