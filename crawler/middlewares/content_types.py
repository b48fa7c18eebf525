"""Passive by default: HTML only, unless a source enables another content type.

Media is refused twice over: a link that names a media file is never requested, and a
response whose headers announce a type the source did not enable is cut off before its
body is downloaded.
"""

from __future__ import annotations

import logging
import posixpath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import IgnoreRequest, StopDownload
from scrapy.linkextractors import IGNORED_EXTENSIONS

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http.headers import Headers

logger = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


class RefusedContent(IgnoreRequest):
    """A request or response refused because its content type is not enabled."""


def _allowed(spider: Spider | None) -> frozenset[str]:
    source = getattr(spider, "source", None)
    return frozenset(source.content_types) | HTML_TYPES if source else HTML_TYPES


def _extension(url: str) -> str:
    return posixpath.splitext(urlsplit(url).path)[1].lstrip(".").lower()


class ContentTypeGuard:
    """Downloader middleware; `headers_received` stops a body the source did not ask for."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        crawler.signals.connect(self.headers_received, signal=signals.headers_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ContentTypeGuard:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        extension = _extension(request.url)
        allowed = _allowed(self.crawler.spider)
        if extension in IGNORED_EXTENSIONS and not any(extension in t for t in allowed):
            raise RefusedContent(f"refused {request.url}: .{extension} files are not enabled")

    def headers_received(
        self, headers: Headers, body_length: int, request: Request, spider: Spider, **_: Any
    ) -> None:
        raw = headers.get(b"Content-Type") or b"text/html"
        content_type = raw.decode("latin-1").split(";")[0].strip().lower()
        if content_type not in _allowed(spider):
            logger.info("refused %s: content type %s is not enabled", request.url, content_type)
            raise StopDownload(fail=True)
