"""Item pipeline: raw page fields to normalised records, problems kept on the item."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pipelines.entities import Reader, feedback_records, listing_record, vendor_record
from pipelines.normalise import NormaliseError, parse_count, parse_rate

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.items import PageItem
    from crawler.sources.model import Source

logger = logging.getLogger(__name__)


class NormalisePipeline:
    """Runs before the archive; never drops an item, so the raw page is always stored."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NormalisePipeline:
        return cls(crawler)

    @property
    def source(self) -> Source:
        return self.crawler.spider.source  # type: ignore[union-attr, no-any-return]

    def process_item(self, item: PageItem) -> PageItem:
        normalise_page(item, self.source)
        return item


def _rates(item: PageItem) -> None:
    for text in item.rates:
        try:
            rate = parse_rate(text)
        except NormaliseError as exc:
            item.problems.append(f"rate: {exc}")
            continue
        item.rate_quotes[rate.base] = {
            "value": rate.value,
            "quote": rate.quote,
            "text": rate.text,
            "source": "market",
            "url": item.url,
        }


def normalise_page(item: PageItem, source: Source) -> None:
    """Fill `records`, `feedback`, `expected` and `problems` of one page item."""
    _rates(item)
    if item.missing:
        item.problems.append("required field(s) not found: " + ", ".join(item.missing))
        return
    reader = Reader(hints=source.normalise, base=item.server_date or item.fetched_at)
    fields = item.fields
    if item.state == "index":
        for kind in ("listing", "vendor"):
            count = reader.attempt(f"{kind}_count", fields.get(f"{kind}_count"), parse_count)
            if count is not None:
                item.expected[kind] = count
    elif item.state == "listing":
        key = reader.text(fields.get("listing_id"))
        if key:
            item.records.append(("listing", key, listing_record(reader, fields)))
            item.feedback = feedback_records(reader, fields)
        else:
            reader.problems.append("no listing id on a listing page")
    elif item.state == "vendor":
        key = reader.text(fields.get("vendor_id"))
        if key:
            item.records.append(("vendor", key, vendor_record(reader, fields)))
        else:
            reader.problems.append("no vendor id on a vendor page")
    item.problems.extend(reader.problems)
