"""Every fixture market crawled three days in a row stores each true feedback entry once.

A market's listing page shows its newest feedback with coarse dates ("9 hours ago",
"yesterday", "vor 3 Tagen", "вчера в 01:05", "2 weeks ago"); crawled on consecutive days,
the same entry is read as a different interval each day. The intervals are widened so the
same entry always overlaps itself (tests/test_feedback_intervals.py); here the real
markets check that the widening never merges two entries and never splits one, and that
each entry's interval, as known after the third run, lies on the day it was left (rynok
writes Moscow clock times, which read as UTC put late-evening entries on the wrong day).
The truth is what the generator's pages showed on any of the three days
(fixtures/market/world.py: the newest `FEEDBACK_SHOWN` per listing).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from fixtures.market.accuracy import run_cli
from fixtures.market.evolve import build_world
from fixtures.market.world import FEEDBACK_SHOWN, Feedback
from fixtures.server import FixtureServer
from pipelines.store.feedback import as_of
from pipelines.store.schema import FEEDBACK

if TYPE_CHECKING:
    from pathlib import Path

    from pymongo.database import Database

DAYS = (1, 2, 3)


def true_entries(market: str) -> dict[str, Counter[Feedback]]:
    """The feedback entries the market's listing pages showed on any of `DAYS`, by listing.

    An entry is its generated values (buyer, rating, text, date, hour); identical values on
    one listing count as many times as one day shows them.
    """
    shown: dict[str, Counter[Feedback]] = {}
    for day in DAYS:
        for key, listing in build_world(market, day).listings.items():
            today = Counter(listing.feedback[:FEEDBACK_SHOWN])
            shown[key] = shown.get(key, Counter()) | today  # max per entry across days
    return shown


def on_its_day(entry: Feedback, intervals: list[tuple[datetime, datetime]]) -> bool:
    """Some stored interval of the entry's identity overlaps the UTC day it was left."""
    start = datetime.combine(entry.date, time(), tzinfo=UTC)
    return any(lo < start + timedelta(days=1) and hi > start for lo, hi in intervals)


@pytest.mark.parametrize("market", ["demo", "classic", "grid", "shop", "rynok", "bazaar"])
def test_three_daily_crawls_store_each_true_entry_once(
    market: str, crawl_env: tuple[dict[str, str], Database[Any], Path]
) -> None:
    env, db, _ = crawl_env
    with FixtureServer(market=market, day=DAYS[0]) as server:
        for day in DAYS:
            server.set_day(day)
            run_cli("crawl", market, "--mirror", server.url, env=env)
    truth = true_entries(market)
    expected = sum(sum(entries.values()) for entries in truth.values())
    stored = list(db[FEEDBACK].find({"source": market}))
    assert expected > 100
    assert len(stored) == expected
    # as known after the third run: "сегодня в 01:05" in Moscow is the day before in UTC
    intervals: dict[tuple[str, str, Decimal, str], list[tuple[datetime, datetime]]] = {}
    for doc in map(as_of, stored):
        identity = (doc["listing_key"], doc["buyer"], Decimal(str(doc["rating"])), doc["text"])
        intervals.setdefault(identity, []).append((doc["date_earliest"], doc["date_latest"]))
    misplaced = [
        (key, entry)
        for key, entries in truth.items()
        for entry in entries
        if not on_its_day(
            entry, intervals.get((key, entry.buyer, Decimal(entry.rating), entry.text), [])
        )
    ]
    assert not misplaced, [
        (key, entry, intervals.get((key, entry.buyer, Decimal(entry.rating), entry.text)))
        for key, entry in misplaced[:3]
    ]
