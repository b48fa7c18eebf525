"""Item pipeline: raw page fields to normalised records, problems kept on the item."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import bson
import bson.errors

from pipelines.entities import Reader, feedback_records, listing_record, vendor_record
from pipelines.normalise import NormaliseError, parse_count, parse_rate
from pipelines.store.codec import to_bson

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
        try:
            normalise_page(item, self.source)
        except Exception as exc:  # a normaliser bug must not cost the raw page its archiving
            logger.exception("normalising %s failed", item.url)
            item.records, item.feedback = [], []
            item.problems.append(f"normalisation failed: {type(exc).__name__}: {exc}")
        return item


def _rates(item: PageItem) -> None:
    for text in item.rates:
        try:
            rate = parse_rate(text)
        except NormaliseError as exc:
            item.problems.append(f"rate: {exc}")
            continue
        # Rates against USD convert prices; others are kept under their pair's name.
        key = rate.base if rate.quote == "USD" else f"{rate.base}/{rate.quote}"
        item.rate_quotes[key] = {
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
        # `<kind>_count`: what this page (and its pagination) lists; `<kind>_total`: the
        # whole market. Both are checked against what the crawl linked.
        for kind in ("listing", "vendor"):
            for name, slot in ((f"{kind}_count", kind), (f"{kind}_total", f"{kind}_total")):
                count = reader.attempt(name, fields.get(name), parse_count)
                if count is not None:
                    item.expected[slot] = count
    elif item.state == "listing":
        key = reader.text(fields.get("listing_id"))
        if key:
            extra = source.pages["listing"].extra_fields
            item.records.append(("listing", key, listing_record(reader, fields, extra)))
            item.feedback = feedback_records(reader, fields)
        else:
            reader.problems.append("no listing id on a listing page")
    elif item.state == "vendor":
        key = reader.text(fields.get("vendor_id"))
        if key:
            extra = source.pages["vendor"].extra_fields
            item.records.append(("vendor", key, vendor_record(reader, fields, extra)))
        else:
            reader.problems.append("no vendor id on a vendor page")
    item.problems.extend(reader.problems)
    _check_coverage(item, source)
    _check_storable(item)


def _check_coverage(item: PageItem, source: Source) -> None:
    """Template drift: too few fields found means empty records, which are never archived."""
    blueprint = source.pages.get(item.state)  # type: ignore[call-overload]
    floor = blueprint.min_field_coverage if blueprint is not None else 0.0
    if item.records and item.coverage is not None and item.coverage < floor:
        item.problems.append(
            f"only {item.coverage:.0%} of the blueprint's fields found (at least {floor:.0%} "
            "expected): the page layout may have changed; nothing archived from it"
        )
        item.records, item.feedback = [], []


def _check_storable(item: PageItem) -> None:
    """Validation: a record MongoDB cannot hold (a 40-digit price, a 20-digit count) is
    refused here with its page, instead of failing a whole write batch later."""
    for record in list(item.records):
        kind, key, content = record
        try:
            bson.encode(to_bson({"content": content}))
        except (ArithmeticError, OverflowError, ValueError, bson.errors.InvalidDocument) as exc:
            item.problems.append(f"{kind} {key} cannot be stored: {type(exc).__name__}: {exc}")
            item.records.remove(record)
    if not item.records:
        item.feedback = []
        return
    try:
        bson.encode(to_bson({"feedback": item.feedback}))
    except (ArithmeticError, OverflowError, ValueError, bson.errors.InvalidDocument) as exc:
        item.problems.append(f"feedback cannot be stored: {type(exc).__name__}: {exc}")
        item.feedback = []
