"""A plain Scrapy spider that fetches every page of a fixture market and does nothing else.

The yardstick of `bench_all.py`: the same pages, the same concurrency, no extraction, no
archive. What the full crawl costs beyond this is the price of the archive.

    .venv/bin/python bench/fetch_only.py URL [--concurrency 8]

Prints one JSON line: pages fetched and seconds from engine start to close.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from scrapy.http import Response


class FetchOnly(scrapy.Spider):
    """Follow every link on the market's host; keep nothing."""

    name = "fetch_only"

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.links = LinkExtractor(deny=[r"/photo/"])
        self.pages = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.url + "/")

    def parse(self, response: Response) -> Iterator[scrapy.Request]:
        self.pages += 1
        for link in self.links.extract_links(response):
            if link.url.startswith(self.url + "/"):  # allow_domains would miss host:port
                yield response.follow(link.url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    process = CrawlerProcess(
        {
            "LOG_LEVEL": "WARNING",
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
            "DOWNLOAD_DELAY": 0,
            "ROBOTSTXT_OBEY": False,
            "TELNETCONSOLE_ENABLED": False,
            "REMOTE_CONTROL_ENABLED": False,
        }
    )
    crawler = process.create_crawler(FetchOnly)
    started = time.monotonic()
    process.crawl(crawler, url=args.url.rstrip("/"))
    process.start()
    spider = crawler.spider
    assert isinstance(spider, FetchOnly)
    print(json.dumps({"pages": spider.pages, "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main()
