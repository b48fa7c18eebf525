"""Item pipeline: raw page fields to normalised records, problems kept on the item."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import bson
import bson.errors

from crawler.pagestate import RATES_STATE
from pipelines.entities import Reader, feedback_records, listing_record, vendor_record
from pipelines.normalise import NormaliseError, memo, parse_count
from pipelines.normalise.rates import rate_key
from pipelines.store.codec import to_bson
from pipelines.store.displayed import per_run_by_entity

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
    """A page's rate lines, or the rates page's, with where they were read. Either way
    round is kept as shown ("1 USD = 92,50 ₽" is USD/RUB): conversion inverts and crosses
    them (pipelines/normalise/rates.py)."""
    on_rates_page = item.state == RATES_STATE
    for text in item.rates:
        try:
            rate = memo.rate(text)
        except NormaliseError as exc:
            item.problems.append(f"rate: {exc}")
            continue
        if rate.base == rate.quote:
            item.problems.append(f"rate: {text!r} prices {rate.base} in itself")
            continue
        item.rate_quotes[rate_key(rate.base, rate.quote)] = {
            "value": rate.value,
            "quote": rate.quote,
            "text": rate.text,
            "source": "rates_page" if on_rates_page else "market",
            "url": item.url,
        }


def _displayed(reader: Reader, key: str, fields: dict[str, Any], record: dict[str, Any]) -> Any:
    """The second price beside the listing's price, kept with the run's page: it moves
    with the rate every day, and a version per day would say nothing about the listing."""
    text = reader.text(fields.get("price_hint"))
    if text is None:
        return None
    hint = reader.price("price_hint", text) or {}
    return {"kind": "listing", "key": key, "field": "price_hint", **hint, "of": record.get("price")}


# What moves every day while the entity stays the same: counters, and dates a market
# writes relative to today ("Listed 3 days ago"). Kept per run on the page, like
# `price_hint`, and merged back by exports and queries for that run; in a version they
# would make one per entity per day (168–179 of 200 vendors on demo-large).
PER_RUN: dict[str, tuple[str, ...]] = {
    "listing": ("sales", "sales_text", "listed", "updated"),
    "vendor": ("feedback_count", "feedback_count_text", "sales", "sales_text"),
}


def _per_run(item: PageItem, kind: str, key: str, record: dict[str, Any]) -> None:
    for name in PER_RUN[kind]:
        if name in record:
            value = record.pop(name)
            item.displayed.append({"kind": kind, "key": key, "field": name, "value": value})


def records_as_read(item: PageItem) -> list[tuple[str, str, dict[str, Any]]]:
    """The page's records with their per-run values put back: everything the page read
    about each entity, for replay and for checks that look at one page."""
    values = per_run_by_entity(item.displayed)
    return [(k, key, {**c, **values.get((k, key), {})}) for k, key, c in item.records]


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
            record = listing_record(reader, fields, extra)
            item.records.append(("listing", key, record))
            item.feedback = feedback_records(reader, fields)
            hint = _displayed(reader, key, fields, record)
            if hint is not None:
                item.displayed.append(hint)
            _per_run(item, "listing", key, record)
        else:
            reader.problems.append("no listing id on a listing page")
    elif item.state == "vendor":
        key = reader.text(fields.get("vendor_id"))
        if key:
            extra = source.pages["vendor"].extra_fields
            record = vendor_record(reader, fields, extra)
            item.records.append(("vendor", key, record))
            _per_run(item, "vendor", key, record)
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
