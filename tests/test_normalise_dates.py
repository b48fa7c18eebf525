"""Date strings from listing, vendor-profile and feedback pages, English and German.

Markets print relative ages ("3 hours ago", "vor 3 Tagen", "yesterday", "2 weeks ago"),
which only mean something against the server's clock (the HTTP Date header, ``BASE`` here),
absolute dates in several orders ("12 Jan 2026", "2026-01-12", "12.01.2026"), and labelled
profile fields ("Member since 14 Mar 2024", "Joined: March 2024", "Mitglied seit …").
Every row expects the half-open UTC interval the text can mean: for a relative age, wide
enough to hold the true time whichever way the market rounded it. A source's time zone
(`normalise.timezone`) places clock times ("today at 14:05") and absolute dates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import yaml

from crawler.sources.loader import DEFAULT_SOURCES_DIR, SourceConfigError, load_source
from pipelines.normalise import DateError, DateInterval, parse_date
from pipelines.normalise.dates import CLOCK_SLACK, zone

if TYPE_CHECKING:
    from pathlib import Path

BASE = datetime(2026, 1, 15, 10, 30, 12, tzinfo=UTC)  # a Thursday


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def early(**age: float) -> datetime:
    """The start of a relative interval: `age` before BASE, less the clock slack."""
    return BASE - timedelta(**age) - CLOCK_SLACK


def late(**age: float) -> datetime:
    """The end of a relative interval: `age` before BASE, plus the clock slack."""
    return BASE - timedelta(**age) + CLOCK_SLACK


@pytest.mark.parametrize(
    ("text", "languages", "date_order", "earliest", "latest", "precision"),
    [
        # relative ages hold the true time however the market rounded: N units ago is
        # N-1 < age < N+1 units (floor, round, ceil or calendar days), widened by the
        # market's clock slack: early(...)/late(...) are base minus that, minus/plus SLACK
        ("3 hours ago", ("en",), None, early(hours=4), late(hours=2), "hour"),
        ("1 hour ago", ("en",), None, early(hours=2), late(), "hour"),
        ("an hour ago", ("en",), None, early(hours=2), late(), "hour"),
        ("3h ago", ("en",), None, early(hours=4), late(hours=2), "hour"),
        ("12 minutes ago", ("en",), None, early(minutes=13), late(minutes=11), "minute"),
        ("45 mins ago", ("en",), None, early(minutes=46), late(minutes=44), "minute"),
        ("30 seconds ago", ("en",), None, early(seconds=31), late(seconds=29), "second"),
        ("just now", ("en",), None, early(hours=1), late(), "hour"),
        ("Online now", ("en",), None, early(hours=1), late(), "hour"),
        ("Last seen: 3 hours ago", ("en",), None, early(hours=4), late(hours=2), "hour"),
        # day words are N days ago: "yesterday" is the market's yesterday in any time zone
        ("today", ("en",), None, early(days=1), late(), "day"),
        ("Today", ("en",), None, early(days=1), late(), "day"),
        ("yesterday", ("en",), None, early(days=2), late(), "day"),
        ("Yesterday", ("en",), None, early(days=2), late(), "day"),
        ("1 day ago", ("en",), None, early(days=2), late(), "day"),
        ("a day ago", ("en",), None, early(days=2), late(), "day"),
        ("3 days ago", ("en",), None, early(days=4), late(days=2), "day"),
        ("20 days ago", ("en",), None, early(days=21), late(days=19), "day"),
        ("Shipped 2 days ago", ("en",), None, early(days=3), late(days=1), "day"),
        ("1 week ago", ("en",), None, early(weeks=2), late(), "week"),
        ("a week ago", ("en",), None, early(weeks=2), late(), "week"),
        ("last week", ("en",), None, early(weeks=2), late(), "week"),
        ("2 weeks ago", ("en",), None, early(weeks=3), late(weeks=1), "week"),
        # months are 28-31 days, years 365-366: (N+1) long units back to (N-1) short ones
        ("1 month ago", ("en",), None, early(days=62), late(), "month"),
        ("2 months ago", ("en",), None, early(days=93), late(days=28), "month"),
        ("1 year ago", ("en",), None, early(days=732), late(), "year"),
        ("2 years ago", ("en",), None, early(days=1098), late(days=365), "year"),
        # relative, German
        ("vor 3 Stunden", ("de",), None, early(hours=4), late(hours=2), "hour"),
        ("vor einer Stunde", ("de",), None, early(hours=2), late(), "hour"),
        ("heute", ("de",), None, early(days=1), late(), "day"),
        ("gestern", ("de",), None, early(days=2), late(), "day"),
        ("Gestern", ("de",), None, early(days=2), late(), "day"),
        ("vorgestern", ("de",), None, early(days=3), late(days=1), "day"),
        ("vor 3 Tagen", ("de",), None, early(days=4), late(days=2), "day"),
        ("vor einem Tag", ("de",), None, early(days=2), late(), "day"),
        ("vor 2 Wochen", ("de",), None, early(weeks=3), late(weeks=1), "week"),
        ("vor einer Woche", ("de",), None, early(weeks=2), late(), "week"),
        ("vor 5 Wochen", ("de",), None, early(weeks=6), late(weeks=4), "week"),
        ("vor 2 Stunden", ("de",), None, early(hours=3), late(hours=1), "hour"),
        ("vor einem Monat", ("de",), None, early(days=62), late(), "month"),
        ("vor 2 Jahren", ("de",), None, early(days=1098), late(days=365), "year"),
        # relative, French, from the shop fixture market's feedback
        ("il y a 3 heures", ("fr",), None, early(hours=4), late(hours=2), "hour"),
        ("il y a une heure", ("fr",), None, early(hours=2), late(), "hour"),
        ("aujourd'hui", ("fr",), None, early(days=1), late(), "day"),
        ("hier", ("fr", "en"), None, early(days=2), late(), "day"),
        ("Hier", ("fr",), None, early(days=2), late(), "day"),
        ("avant-hier", ("fr",), None, early(days=3), late(days=1), "day"),
        ("il y a 3 jours", ("fr", "en"), None, early(days=4), late(days=2), "day"),
        ("il y a 1 semaine", ("fr",), None, early(weeks=2), late(), "week"),
        ("il y a 2 semaines", ("fr",), None, early(weeks=3), late(weeks=1), "week"),
        ("il y a un mois", ("fr",), None, early(days=62), late(), "month"),
        ("il y a 2 ans", ("fr",), None, early(days=1098), late(days=365), "year"),
        # absolute dates are what the market recorded: not widened
        ("2026-01-12", ("fr", "en"), "YMD", utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        # absolute days
        ("12 Jan 2026", ("en",), None, utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        ("Jan 12, 2026", ("en",), None, utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        ("January 12th, 2026", ("en",), None, utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        ("2026-01-12", ("en",), None, utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        ("12.01.2026", ("en",), "DMY", utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        ("12.01.2026", ("de",), None, utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        ("01/12/2026", ("en",), "MDY", utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        # month first, from the grid fixture market's reviews and vendor profiles
        ("12/31/2025", ("en",), "MDY", utc(2025, 12, 31), utc(2026, 1, 1), "day"),
        ("03/04/2025", ("en",), "MDY", utc(2025, 3, 4), utc(2025, 3, 5), "day"),
        ("Mar 4, 2025", ("en",), "MDY", utc(2025, 3, 4), utc(2025, 3, 5), "day"),
        ("14. März 2024", ("de",), None, utc(2024, 3, 14), utc(2024, 3, 15), "day"),
        ("4. März 2026", ("de",), "DMY", utc(2026, 3, 4), utc(2026, 3, 5), "day"),
        ("28. Februar 2025", ("de",), "DMY", utc(2025, 2, 28), utc(2025, 3, 1), "day"),
        ("29 Feb 2024", ("en",), None, utc(2024, 2, 29), utc(2024, 3, 1), "day"),
        # labelled fields: dateparser's search finds the date among the words
        ("Member since 14 Mar 2024", ("en",), None, utc(2024, 3, 14), utc(2024, 3, 15), "day"),
        ("Mitglied seit 14. März 2024", ("de",), None, utc(2024, 3, 14), utc(2024, 3, 15), "day"),
        # month and year precision: the whole month / year
        ("Joined: March 2024", ("en",), None, utc(2024, 3, 1), utc(2024, 4, 1), "month"),
        ("March 2024", ("en",), None, utc(2024, 3, 1), utc(2024, 4, 1), "month"),
        ("Dezember 2025", ("de",), None, utc(2025, 12, 1), utc(2026, 1, 1), "month"),
        ("2024", ("en",), None, utc(2024, 1, 1), utc(2025, 1, 1), "year"),
        # with a clock time: that minute, converted to UTC
        ("2026-01-12 14:30", ("en",), None,
         utc(2026, 1, 12, 14, 30), utc(2026, 1, 12, 14, 31), "minute"),
        ("2026-01-12T14:30:59Z", ("en",), None,
         utc(2026, 1, 12, 14, 30), utc(2026, 1, 12, 14, 31), "minute"),
        ("12 Jan 2026 14:30 CET", ("en",), None,
         utc(2026, 1, 12, 13, 30), utc(2026, 1, 12, 13, 31), "minute"),
    ],
)  # fmt: skip
def test_parse_date(
    text: str,
    languages: tuple[str, ...],
    date_order: str | None,
    earliest: datetime,
    latest: datetime,
    precision: str,
) -> None:
    interval = parse_date(text, base=BASE, languages=languages, date_order=date_order)
    assert interval == DateInterval(earliest, latest, text, precision)
    assert interval.earliest.tzinfo is UTC and interval.latest.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "languages"),
    [
        ("", ("en",)),
        ("Never", ("en",)),
        ("n/a", ("en",)),
        ("banana", ("en",)),
        ("nie", ("de",)),
        # absurd numbers (issue 10): past what a calendar holds, or far from the fetch
        ("3000 years ago", ("en",)),
        ("1" * 30 + " hours ago", ("en",)),
        ("9" * 30 + " days ago", ("en",)),
        ("-2 days ago", ("en",)),
        ("31 years ago", ("en",)),
        ("01/01/1970", ("en",)),
        ("2099-01-01", ("en",)),
        ("1. Januar 2099", ("de",)),
    ],
)
def test_parse_date_fails(text: str, languages: tuple[str, ...]) -> None:
    with pytest.raises(DateError) as info:
        parse_date(text, base=BASE, languages=languages)
    assert info.value.text == text


def test_base_in_another_zone_counts_from_the_same_instant() -> None:
    from datetime import timezone

    base = datetime(2026, 1, 15, 0, 30, tzinfo=timezone(timedelta(hours=2)))  # 14th 22:30 UTC
    assert parse_date("today", base=base).earliest == utc(2026, 1, 13, 22, 15)
    assert parse_date("today", base=base).latest == utc(2026, 1, 14, 22, 45)


@pytest.mark.parametrize(
    ("text", "languages", "tz", "earliest", "latest", "precision"),
    [
        # a clock time after a day word: that minute of the market's own calendar day
        ("today at 12:05", ("en",), "Europe/Moscow",
         utc(2026, 1, 15, 9, 5), utc(2026, 1, 15, 9, 6), "minute"),
        ("today at 09:05", ("en",), "UTC",
         utc(2026, 1, 15, 9, 5), utc(2026, 1, 15, 9, 6), "minute"),
        ("yesterday 09:30", ("en",), "Europe/Moscow",
         utc(2026, 1, 14, 6, 30), utc(2026, 1, 14, 6, 31), "minute"),
        ("Today, 1:05 am", ("en",), "America/New_York",
         utc(2026, 1, 15, 6, 5), utc(2026, 1, 15, 6, 6), "minute"),
        ("Yesterday at 11:40 PM", ("en",), "America/New_York",
         utc(2026, 1, 15, 4, 40), utc(2026, 1, 15, 4, 41), "minute"),
        ("heute um 11:15", ("de",), "Europe/Berlin",
         utc(2026, 1, 15, 10, 15), utc(2026, 1, 15, 10, 16), "minute"),
        ("gestern, 23:50 Uhr", ("de",), "Europe/Berlin",
         utc(2026, 1, 14, 22, 50), utc(2026, 1, 14, 22, 51), "minute"),
        ("hier à 9h30", ("fr",), "Europe/Paris",
         utc(2026, 1, 14, 8, 30), utc(2026, 1, 14, 8, 31), "minute"),
        ("сегодня в 12:00", ("ru",), "Europe/Moscow",
         utc(2026, 1, 15, 9, 0), utc(2026, 1, 15, 9, 1), "minute"),
        ("вчера в 01:10", ("ru",), "Asia/Tokyo",
         utc(2026, 1, 13, 16, 10), utc(2026, 1, 13, 16, 11), "minute"),
        # absolute dates without a zone are the market's local day, month or minute
        ("12 Jan 2026", ("en",), "Europe/Moscow",
         utc(2026, 1, 11, 21), utc(2026, 1, 12, 21), "day"),
        ("12.01.2026", ("de",), "Europe/Berlin",
         utc(2026, 1, 11, 23), utc(2026, 1, 12, 23), "day"),
        ("2026-01-12 14:30", ("en",), "Europe/Moscow",
         utc(2026, 1, 12, 11, 30), utc(2026, 1, 12, 11, 31), "minute"),
        ("March 2024", ("en",), "Europe/Moscow",
         utc(2024, 2, 29, 21), utc(2024, 3, 31, 21), "month"),
        ("29 Mar 2026", ("en",), "Europe/Berlin",  # the day clocks go forward: 23 hours
         utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), "day"),
        # a zone the text names wins over the market's
        ("12 Jan 2026 14:30 CET", ("en",), "Europe/Moscow",
         utc(2026, 1, 12, 13, 30), utc(2026, 1, 12, 13, 31), "minute"),
        # relative ages count back from the instant: the zone changes nothing
        ("yesterday", ("en",), "Europe/Moscow", early(days=2), late(), "day"),
        ("vor 3 Tagen", ("de",), "Asia/Tokyo", early(days=4), late(days=2), "day"),
    ],
)  # fmt: skip
def test_a_sources_time_zone(
    text: str,
    languages: tuple[str, ...],
    tz: str,
    earliest: datetime,
    latest: datetime,
    precision: str,
) -> None:
    """Sources declare `normalise.timezone`; "today at 14:05" in Moscow is 11:05 UTC."""
    interval = parse_date(text, base=BASE, languages=languages, timezone=zone(tz))
    assert interval == DateInterval(earliest, latest, text, precision)
    assert interval.earliest.tzinfo is UTC and interval.latest.tzinfo is UTC


def test_a_clock_time_near_the_markets_midnight_spans_both_days() -> None:
    """At 23:55 Moscow time by our clock, the market's clock may already read 00:05: its
    "today at 00:02" is either day, so the interval holds both rather than guess."""
    base = utc(2026, 1, 15, 20, 55)  # 23:55 in Moscow
    interval = parse_date("today at 00:02", base=base, timezone=zone("Europe/Moscow"))
    assert (interval.earliest, interval.latest) == (
        utc(2026, 1, 14, 21, 2),
        utc(2026, 1, 15, 21, 3),
    )
    noon = parse_date("today at 00:02", base=utc(2026, 1, 15, 9), timezone=zone("Europe/Moscow"))
    assert (noon.earliest, noon.latest) == (utc(2026, 1, 14, 21, 2), utc(2026, 1, 14, 21, 3))


@pytest.mark.parametrize("name", ["Mars/Olympus", "UTC+3", "", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused_naming_it(name: str) -> None:
    with pytest.raises(ValueError, match="is not an IANA time zone"):
        zone(name)


def test_naive_base_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_date("today", base=datetime(2026, 1, 15))


@pytest.mark.parametrize(
    "text", ["12 Jan 2026", "4 September 2025", "Jan 12, 2026", "March 3, 2024", "2026-01-12"]
)
def test_fast_path_agrees_with_dateparser(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The strptime shortcut must give exactly what the dateparser path gives."""
    from pipelines.normalise import dates

    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    fast = parse_date(text, base=base)
    monkeypatch.setattr(dates, "_fast_day", lambda _text, _languages, _zone: None)
    slow = parse_date(text, base=base)
    assert (fast.earliest, fast.latest, fast.precision) == (
        slow.earliest,
        slow.latest,
        slow.precision,
    )


SAME_MEANING = [  # one row a meaning: how each language says it; all must give one interval
    ("3 days ago", "vor 3 Tagen", "il y a 3 jours", "3 дня назад"),
    ("a week ago", "vor einer Woche", "il y a une semaine", "неделю назад"),
    ("1 week ago", "vor 1 Woche", "il y a 1 semaine", "1 неделю назад"),
    ("2 weeks ago", "vor 2 Wochen", "il y a 2 semaines", "2 недели назад"),
    ("5 hours ago", "vor 5 Stunden", "il y a 5 heures", "5 часов назад"),
    ("an hour ago", "vor einer Stunde", "il y a une heure", "час назад"),
    ("2 months ago", "vor 2 Monaten", "il y a 2 mois", "2 месяца назад"),
    ("a year ago", "vor einem Jahr", "il y a un an", "год назад"),
    ("5 years ago", "vor 5 Jahren", "il y a 5 ans", "5 лет назад"),
    ("today", "heute", "aujourd'hui", "сегодня"),
    ("yesterday", "gestern", "hier", "вчера"),
    ("the day before yesterday", "vorgestern", "avant-hier", "позавчера"),
    ("last week", "letzte Woche", "la semaine dernière", "на прошлой неделе"),
    ("last month", "letzten Monat", "le mois dernier", "в прошлом месяце"),
    ("just now", "gerade eben", "à l'instant", "только что"),
]


@pytest.mark.parametrize("phrases", SAME_MEANING, ids=[row[0] for row in SAME_MEANING])
def test_every_language_gives_the_same_interval(phrases: tuple[str, ...]) -> None:
    """Russian "неделю назад" once fell through to dateparser, which read it as the current
    calendar week where English, German and French give the week before."""
    base = datetime(2026, 3, 12, 14, 5, tzinfo=UTC)
    english, *others = phrases
    expected = parse_date(english, base=base, languages=("en",))
    for phrase, language in zip(others, ("de", "fr", "ru"), strict=True):
        got = parse_date(phrase, base=base, languages=(language,))
        assert (got.earliest, got.latest, got.precision) == (
            expected.earliest,
            expected.latest,
            expected.precision,
        ), phrase


def test_a_sources_time_zone_is_checked_on_load(tmp_path: Path) -> None:
    """A misspelt zone fails when the file loads, naming the file and the key."""
    data = yaml.safe_load((DEFAULT_SOURCES_DIR / "demo.yaml").read_text(encoding="utf-8"))
    data.setdefault("normalise", {})["timezone"] = "Europe/Moskow"
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(SourceConfigError) as caught:
        load_source(str(path))
    assert str(caught.value).startswith(f"{path}: key normalise.timezone: ")
    assert "'Europe/Moskow' is not an IANA time zone" in str(caught.value)
    data["normalise"]["timezone"] = "Europe/Moscow"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_source(str(path)).normalise.timezone == "Europe/Moscow"
