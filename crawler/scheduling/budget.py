"""A source's daily page budget: pages its runs fetched today (UTC), and what is left."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from crawler.scheduling.timing import utc_midnight

if TYPE_CHECKING:
    from datetime import datetime

    from pymongo.database import Database

logger = logging.getLogger(__name__)


def pages_today(db: Database, source: str, now: datetime) -> int:
    """Pages the source's runs fetched since midnight UTC (each run's `counts.pages`)."""
    runs = db["runs"].find(
        {"source": source, "started_at": {"$gte": utc_midnight(now)}}, {"counts.pages": 1}
    )
    return sum(int((run.get("counts") or {}).get("pages") or 0) for run in runs)


def pages_left(db: Database, source: str, daily: int, now: datetime) -> tuple[int, int]:
    """(pages this crawl may fetch, pages used today). What is left of the day's budget,
    no more than the source file's own `politeness.max_pages`, which the crawl's
    `-s CLOSESPIDER_PAGECOUNT` replaces."""
    used = pages_today(db, source, now)
    left = max(daily - used, 0)
    max_pages = _source_max_pages(source)
    return (min(left, max_pages) if max_pages else left), used


def _source_max_pages(source: str) -> int:
    """The source file's page cap (0 = none); 0 if unreadable (the crawl then fails on the
    file itself, and says why)."""
    from crawler.sources.loader import SourceConfigError, load_source

    try:
        return load_source(source).politeness.max_pages
    except SourceConfigError:
        return 0
