"""Reparse: what today's parser reads from a run's archived pages, without refetching.

A parser fix must be checked against the pages a study already used, and then applied
without rewriting what the study cited. This reads every page a run archived, runs
today's extraction and normalisation over it, and compares the result with the versions
the crawl stored, entity by entity. With `write`, the entities that read differently are
stored as rereads under today's parser version (pipelines/store/rereads.py), beside the
crawl's versions; queries then answer with the newest reading unless told a parser.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any

from bson.decimal128 import Decimal128

from crawler.pages import read_page
from crawler.replay import rebuild_response
from pipelines.normalise_pipeline import normalise_page
from pipelines.parser_version import parser_version
from pipelines.store.codec import SCALARS, canonical_json, stored_decimal_text, utc_ms
from pipelines.store.pages import load_bodies
from pipelines.store.queries import get_run, observed
from pipelines.store.rereads import CRAWL, Reread, RunReading, write_reading
from pipelines.store.run_pages import run_pages
from pipelines.store.schema import KINDS
from pipelines.store.sizes import DEFAULT_MAX_LIST_ITEMS, cap_lists

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database

    from crawler.items import PageItem
    from crawler.sources.model import Source

logger = logging.getLogger(__name__)

BODY_BATCH = 200


@dataclass
class ReparseReport:
    """Counts of a reparse and the entities whose content differs from the crawl's."""

    run_id: str
    parser: str
    pages: int = 0
    same: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    written: dict[str, int] | None = None


def _plain(value: Any) -> Any:
    """What `canonical_json(to_bson(value))` serialises, built in one pass: Decimals as the
    text they have once stored, datetimes as UTC milliseconds in ISO form."""
    if type(value) in SCALARS:  # most values; subclasses take the long way below
        return value
    if isinstance(value, Decimal):
        return stored_decimal_text(value)
    if isinstance(value, Decimal128):
        return str(value.to_decimal())
    if isinstance(value, datetime):
        return utc_ms(value).isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _canonical(content: Any) -> str:
    """`canonical_json(to_bson({"v": content}))`, the form stored content is compared in."""
    return canonical_json({"v": _plain(content)})


def _reread(
    db: Database[Any], source: Source, run_id: str
) -> Iterator[tuple[dict[str, Any], PageItem]]:
    """Every archived page of the run (with its record), read by today's parser; bodies
    are fetched a batch at a time, not one query per page."""
    pages = run_pages(db, run_id, having="sha256")
    while batch := list(islice(pages, BODY_BATCH)):
        packed = [page["body"] for page in batch if "body" in page]
        bodies = load_bodies(db, [page["sha256"] for page in batch], packed)
        for page in batch:
            response = rebuild_response(
                page["url"], page["status"], page["headers"], bodies[page["sha256"]], page["kind"]
            )
            item = read_page(
                source, response, page["kind"], fetched_at=page["fetched_at"], links=False
            )
            normalise_page(item, source)
            blueprint = source.pages.get(item.state)  # type: ignore[call-overload]
            cap_lists(item, blueprint.max_list_items if blueprint else DEFAULT_MAX_LIST_ITEMS)
            item.body = None  # the page is archived already; keep memory flat over a run
            yield page, item


def reparse_run(
    db: Database[Any], source: Source, run_id: str, *, write: bool = False
) -> ReparseReport:
    """Compare what the crawl stored for a run with what the current parser reads from the
    same pages; with `write`, store the differences as rereads under the current parser."""
    run = get_run(db, run_id)
    if run is None or run["source"] != source.id:
        raise KeyError(f"no run {run_id!r} of source {source.id!r}")
    parser = parser_version(source)
    report = ReparseReport(run_id=run_id, parser=parser)
    reading = RunReading(run_id=run_id, source=source.id, seq=run["seq"], parser=parser)
    stored: dict[tuple[str, str], dict[str, Any]] = {
        (kind, entity["key"]): entity["content"]
        for kind in KINDS
        for entity in observed(db, run_id, kind, parser=CRAWL)
    }
    seen: set[tuple[str, str]] = set()
    for page, item in _reread(db, source, run_id):
        report.pages += 1
        report.problems.extend({"url": item.url, "problem": p} for p in item.problems)
        for kind, key, content in item.records:
            if (kind, key) in seen:
                continue  # read on two pages (cross-listed): the crawl kept the first too
            seen.add((kind, key))
            before = stored.get((kind, key))
            if before is not None and _canonical(before) == _canonical(content):
                report.same += 1
                continue
            fields = sorted(
                name
                for name in set(content) | set(before or {})
                if before is None or _canonical(content.get(name)) != _canonical(before.get(name))
            )
            report.differences.append(
                {"kind": kind, "key": key, "stored": before is not None, "fields": fields}
            )
            reading.rereads.append(
                Reread(kind, key, content, fields, item.url, page["sha256"], page["fetched_at"])
            )
    for kind, key in sorted(set(stored) - seen):
        report.differences.append({"kind": kind, "key": key, "stored": True, "reread": False})
        reading.rereads.append(Reread(kind, key, None, sorted(stored[(kind, key)])))
    reading.pages, reading.entities = report.pages, len(seen)
    reading.problems = len(report.problems)
    if write:
        if parser == run.get("parser_version"):
            logger.info("run %s was crawled with parser %s: nothing to store", run_id, parser)
        else:
            report.written = write_reading(db, reading)
    return report
