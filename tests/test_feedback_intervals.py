"""Feedback counted once across runs, whatever way a market rounds its dates (hypothesis).

A market shows each review's age coarsely ("3 days ago", "yesterday at 09:30", "12 Jan
2026") and every market rounds it its own way: the floor, the nearest or the ceiling of the
elapsed time, or calendar days of its own time zone, counted on a clock a few minutes off
ours. The generator draws true reviews (most of them "Positive" with no text and a hidden
buyer, so only their dates tell them apart), crawls at random times over several days,
renders each review as such a market would on each crawl, reads it with the real date
parser, and feeds the runs in order to the real matcher: the archive must hold exactly one
entry per true review, each entry's interval holding its true time.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.normalise.dates import CLOCK_SLACK, parse_date, zone
from pipelines.store import queries
from pipelines.store.archive import Archive
from pipelines.store.feedback import match_intervals, overlap, plan_feedback
from pipelines.store.model import Provenance, RunRef

if TYPE_CHECKING:
    import pymongo

EPOCH = datetime(2026, 3, 1, tzinfo=UTC)
DAY = 86400
ZONES = ("UTC", "Europe/Moscow", "America/New_York", "Asia/Tokyo", "Pacific/Chatham")
RULES = ("floor", "round", "ceil", "calendar")
# (unit, seconds, shown while the age is below): when a market moves to the next unit
UNITS = (
    ("second", 1, 60),
    ("minute", 60, 3600),
    ("hour", 3600, DAY),
    ("day", DAY, 7 * DAY),
    ("week", 7 * DAY, 35 * DAY),
    ("month", 30 * DAY, 365 * DAY),
)
ANONYMOUS = {"buyer": "", "rating": None, "rating_text": "Positive", "text": ""}
IDENTITIES = (  # what markets mostly show: anonymous "Positive" and a masked buyer, no text
    ANONYMOUS,
    ANONYMOUS,
    ANONYMOUS,
    {"buyer": "b***r", "rating": 5, "rating_text": "5/5", "text": ""},
    {"buyer": "b***r", "rating": 5, "rating_text": "5/5", "text": ""},
    {"buyer": "k***9", "rating": 5, "rating_text": "5/5", "text": "fast, stealthy"},
    {"buyer": "k***9", "rating": 4, "rating_text": "4/5", "text": "ok"},
)
DE_UNITS = {
    "second": ("einer Sekunde", "Sekunden"),
    "minute": ("einer Minute", "Minuten"),
    "hour": ("einer Stunde", "Stunden"),
    "day": ("einem Tag", "Tagen"),
    "week": ("einer Woche", "Wochen"),
    "month": ("einem Monat", "Monaten"),
}


@dataclass(frozen=True)
class Market:
    """How one market words a review's date."""

    rule: str  # how an elapsed time becomes "N units"
    style: str  # "ago": relative phrases; "clock": "today at 14:05", then the date
    language: str
    zone: str  # IANA zone of its calendar (declared in the source as normalise.timezone)
    skew: int  # seconds its clock is ahead of ours (may be negative)


@dataclass(frozen=True)
class Review:
    listing: str
    identity: int  # index into IDENTITIES
    when: datetime  # as the market recorded it


@dataclass(frozen=True)
class Scenario:
    market: Market
    reviews: tuple[Review, ...]
    crawls: tuple[datetime, ...]


def _count(rule: str, unit: str, length: int, age: float, now: datetime, when: datetime) -> int:
    if rule == "calendar" and unit in ("day", "week", "month"):
        days = (now.date() - when.date()).days  # both in the market's zone
        if unit == "month":
            months = relativedelta(now.date(), when.date())
            return months.years * 12 + months.months
        return days if unit == "day" else days // 7
    if rule == "round":
        return math.floor(age / length + 0.5)
    if rule == "ceil":
        return math.ceil(age / length)
    return math.floor(age / length)


def _ago(n: int, unit: str, language: str) -> str:
    if language == "de":
        one, many = DE_UNITS[unit]
        return f"vor {one}" if n == 1 else f"vor {n} {many}"
    special = {(1, "day"): "yesterday", (0, "day"): "today", (1, "week"): "last week"}
    if (n, unit) in special:
        return special[(n, unit)]
    return f"{n} {unit}{'' if n == 1 else 's'} ago"


def render(market: Market, review: Review, crawl: datetime) -> str:
    """The review's date as `market` shows it on a page served at our time `crawl`."""
    tz = zone(market.zone)
    now = (crawl + timedelta(seconds=market.skew)).astimezone(tz)
    when = review.when.astimezone(tz)
    age = (now - when).total_seconds()
    if market.style == "clock":
        days = (now.date() - when.date()).days
        if days in (0, 1):
            word = ("today at", "yesterday at") if market.language == "en" else ("heute", "gestern")
            return f"{word[days]} {when:%H:%M}"
        return f"{when:%Y-%m-%d}" if market.language == "de" else f"{when.day} {when:%b %Y}"
    for unit, length, until in UNITS:
        if age < until:
            n = _count(market.rule, unit, length, age, now, when)
            return "just now" if n <= 0 else _ago(n, unit, market.language)
    return f"{when:%Y-%m-%d}"


def page_entries(scenario: Scenario, crawl: datetime) -> dict[str, list[dict[str, Any]]]:
    """Every review the market has at `crawl`, read with the real parser, by listing."""
    market, pages = scenario.market, defaultdict(list)
    market_now = crawl + timedelta(seconds=market.skew)
    for review in sorted(scenario.reviews, key=lambda r: r.when, reverse=True):
        if review.when > market_now:
            continue
        text = render(market, review, crawl)
        languages = (market.language, "en")
        interval = parse_date(text, base=crawl, languages=languages, timezone=zone(market.zone))
        assert interval.earliest <= review.when < interval.latest, (text, interval, review)
        pages[review.listing].append(
            {
                **IDENTITIES[review.identity],
                "date_earliest": interval.earliest,
                "date_latest": interval.latest,
                "date_text": text,
            }
        )
    return pages


def _seen(scenario: Scenario) -> list[Review]:
    last = scenario.crawls[-1] + timedelta(seconds=scenario.market.skew)
    return [r for r in scenario.reviews if r.when <= last]


def assert_one_entry_per_review(scenario: Scenario, stored: list[dict[str, Any]]) -> None:
    """As many entries as true reviews shown, and each review's time in its own entry:
    within each identity, sorted times and intervals pair up (earliest-ending first)."""
    truth = _seen(scenario)
    assert len(stored) == len(truth), (len(stored), len(truth))
    key = ("buyer", "rating", "rating_text", "text")
    times: dict[tuple[Any, ...], list[datetime]] = defaultdict(list)
    for review in truth:
        identity = IDENTITIES[review.identity]
        times[(review.listing, *(identity[k] for k in key))].append(review.when)
    intervals: dict[tuple[Any, ...], list[tuple[datetime, datetime]]] = defaultdict(list)
    for doc in stored:
        interval = (doc["date_earliest"], doc["date_latest"])
        assert interval[0] < interval[1], doc
        intervals[(doc["listing_key"], *(doc.get(k) for k in key))].append(interval)
    assert Counter({k: len(v) for k, v in times.items()}) == Counter(
        {k: len(v) for k, v in intervals.items()}
    )
    for identity, whens in times.items():
        free = list(intervals[identity])
        for when in sorted(whens):  # a point goes to the interval holding it that ends first
            holding = [iv for iv in free if iv[0] <= when < iv[1]]
            assert holding, (identity, when, free)
            free.remove(min(holding, key=lambda iv: iv[1]))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    market = Market(
        rule=draw(st.sampled_from(RULES)),
        style=draw(st.sampled_from(("ago", "ago", "clock"))),
        language=draw(st.sampled_from(("en", "de"))),
        zone=draw(st.sampled_from(ZONES)),
        skew=draw(st.integers(-int(CLOCK_SLACK.total_seconds()), int(CLOCK_SLACK.total_seconds()))),
    )
    ages = st.one_of(  # most reviews close to the crawls, where coarse dates collide
        st.integers(-3 * DAY, 6 * DAY),
        st.integers(-60 * DAY, 6 * DAY),
        st.integers(-400 * DAY, 6 * DAY),
    )
    reviews = draw(
        st.lists(
            st.builds(
                Review,
                st.sampled_from(("l1", "l2")),
                st.integers(0, len(IDENTITIES) - 1),
                ages.map(lambda s: EPOCH + timedelta(seconds=s)),
            ),
            min_size=1,
            max_size=14,
        )
    )
    first = EPOCH + timedelta(seconds=draw(st.integers(0, DAY - 1)))
    gaps = draw(st.lists(st.integers(3600, 3 * DAY), min_size=1, max_size=4))
    crawls = [first]
    for gap in gaps:
        crawls.append(crawls[-1] + timedelta(seconds=gap))
    return Scenario(market, tuple(reviews), tuple(crawls))


def run_ref(seq: int) -> RunRef:
    return RunRef(run_id=f"mkt:{seq:06d}", source="mkt", seq=seq)


def provenance(crawl: datetime) -> Provenance:
    return Provenance("http://m.onion/l", "ab" * 32, crawl, "p1")


# "1 day ago" read a few hours apart: [d, d+1) and [d-1, d) under the old calendar reading
TOUCHING = Scenario(
    Market("floor", "ago", "en", "UTC", 0),
    (Review("l1", 0, EPOCH - timedelta(hours=30)),),
    (EPOCH + timedelta(hours=1), EPOCH + timedelta(hours=23), EPOCH + timedelta(days=2)),
)
# two anonymous "Positive" entries a day apart, crawled daily: never merged, never split
TWO_DAYS = Scenario(
    Market("calendar", "ago", "de", "Europe/Moscow", 600),
    (Review("l1", 0, EPOCH - timedelta(hours=20)), Review("l1", 0, EPOCH + timedelta(hours=5))),
    (EPOCH + timedelta(hours=12), EPOCH + timedelta(hours=36), EPOCH + timedelta(hours=60)),
)


@example(TOUCHING)
@example(TWO_DAYS)
@given(scenarios())
@settings(max_examples=1000, deadline=None)
def test_each_true_review_is_stored_once(scenario: Scenario) -> None:
    stored: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for seq, crawl in enumerate(scenario.crawls, start=1):
        pages = page_entries(scenario, crawl)
        batch = [(key, entries, provenance(crawl)) for key, entries in sorted(pages.items())]
        plan_feedback(run_ref(seq), batch, stored)
    flat = [doc for docs in stored.values() for doc in docs]
    assert_one_entry_per_review(scenario, flat)


@given(scenarios())
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_archive_stores_each_true_review_once(
    mongo_client: pymongo.MongoClient, scenario: Scenario
) -> None:
    """The same, through `record_feedback_many` on the real wire-protocol server."""
    db = mongo_client[f"test_{uuid.uuid4().hex[:12]}"]
    try:
        archive = Archive(db)
        archive.ensure_indexes()
        for crawl in scenario.crawls:
            run = archive.open_run("mkt", parser_version="p1", started_at=crawl)
            pages = page_entries(scenario, crawl)
            batch = [(key, entries, provenance(crawl)) for key, entries in sorted(pages.items())]
            archive.record_feedback_many(run, batch)
        assert_one_entry_per_review(scenario, queries.feedback(db, "mkt"))
    finally:
        mongo_client.drop_database(db.name)


def at(hours: float) -> tuple[datetime, datetime]:
    return EPOCH + timedelta(hours=hours), EPOCH + timedelta(hours=hours + 1)


def test_touching_intervals_do_not_overlap() -> None:
    assert overlap((EPOCH, EPOCH + timedelta(days=1)), (EPOCH - timedelta(days=1), EPOCH)) is None
    assert overlap(at(0), at(0.5)) == (at(0.5)[0], at(0)[1])


def test_the_pairing_is_a_maximum_matching() -> None:
    """Taking the first free stored entry would pair [1, 4) with [0, 10) and leave [5, 9)
    without a partner: one sale counted twice."""
    wide = (EPOCH, EPOCH + timedelta(hours=10))
    stored = [wide, (at(2)[0], at(2)[1])]
    incoming = [(at(1)[0], at(3)[1]), (at(5)[0], at(8)[1])]
    assert match_intervals(stored, incoming) == {0: 1, 1: 0}
