"""Date strings from listing, vendor-profile and feedback pages, English and German.

Markets print relative ages ("3 hours ago", "vor 3 Tagen", "yesterday", "2 weeks ago"),
which only mean something against the server's clock (the HTTP Date header, ``BASE`` here),
absolute dates in several orders ("12 Jan 2026", "2026-01-12", "12.01.2026"), and labelled
profile fields ("Member since 14 Mar 2024", "Joined: March 2024", "Mitglied seit …").
Every row expects the half-open UTC interval the text can mean.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipelines.normalise import DateError, DateInterval, parse_date

BASE = datetime(2026, 1, 15, 10, 30, 12, tzinfo=UTC)  # a Thursday


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "languages", "date_order", "earliest", "latest", "precision"),
    [
        # relative, English: hours are clock hours counted back from the base's hour
        ("3 hours ago", ("en",), None, utc(2026, 1, 15, 7), utc(2026, 1, 15, 8), "hour"),
        ("1 hour ago", ("en",), None, utc(2026, 1, 15, 9), utc(2026, 1, 15, 10), "hour"),
        ("an hour ago", ("en",), None, utc(2026, 1, 15, 9), utc(2026, 1, 15, 10), "hour"),
        ("3h ago", ("en",), None, utc(2026, 1, 15, 7), utc(2026, 1, 15, 8), "hour"),
        ("12 minutes ago", ("en",), None, utc(2026, 1, 15, 10), utc(2026, 1, 15, 11), "hour"),
        ("45 mins ago", ("en",), None, utc(2026, 1, 15, 9), utc(2026, 1, 15, 10), "hour"),
        ("just now", ("en",), None, utc(2026, 1, 15, 10), utc(2026, 1, 15, 11), "hour"),
        ("Online now", ("en",), None, utc(2026, 1, 15, 10), utc(2026, 1, 15, 11), "hour"),
        ("Last seen: 3 hours ago", ("en",), None, utc(2026, 1, 15, 7), utc(2026, 1, 15, 8), "hour"),
        # relative days: the whole UTC calendar day
        ("today", ("en",), None, utc(2026, 1, 15), utc(2026, 1, 16), "day"),
        ("Today", ("en",), None, utc(2026, 1, 15), utc(2026, 1, 16), "day"),
        ("yesterday", ("en",), None, utc(2026, 1, 14), utc(2026, 1, 15), "day"),
        ("Yesterday", ("en",), None, utc(2026, 1, 14), utc(2026, 1, 15), "day"),
        ("1 day ago", ("en",), None, utc(2026, 1, 14), utc(2026, 1, 15), "day"),
        ("a day ago", ("en",), None, utc(2026, 1, 14), utc(2026, 1, 15), "day"),
        ("3 days ago", ("en",), None, utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        ("20 days ago", ("en",), None, utc(2025, 12, 26), utc(2025, 12, 27), "day"),
        ("Shipped 2 days ago", ("en",), None, utc(2026, 1, 13), utc(2026, 1, 14), "day"),
        # weeks: N*7 <= age < (N+1)*7 days, i.e. base-(N+1)w+1d .. base-Nw
        ("1 week ago", ("en",), None, utc(2026, 1, 2), utc(2026, 1, 9), "week"),
        ("a week ago", ("en",), None, utc(2026, 1, 2), utc(2026, 1, 9), "week"),
        ("last week", ("en",), None, utc(2026, 1, 2), utc(2026, 1, 9), "week"),
        ("2 weeks ago", ("en",), None, utc(2025, 12, 26), utc(2026, 1, 2), "week"),
        # months and years likewise, in calendar months / years
        ("1 month ago", ("en",), None, utc(2025, 11, 16), utc(2025, 12, 16), "month"),
        ("2 months ago", ("en",), None, utc(2025, 10, 16), utc(2025, 11, 16), "month"),
        ("1 year ago", ("en",), None, utc(2024, 1, 16), utc(2025, 1, 16), "year"),
        ("2 years ago", ("en",), None, utc(2023, 1, 16), utc(2024, 1, 16), "year"),
        # relative, German
        ("vor 3 Stunden", ("de",), None, utc(2026, 1, 15, 7), utc(2026, 1, 15, 8), "hour"),
        ("vor einer Stunde", ("de",), None, utc(2026, 1, 15, 9), utc(2026, 1, 15, 10), "hour"),
        ("heute", ("de",), None, utc(2026, 1, 15), utc(2026, 1, 16), "day"),
        ("gestern", ("de",), None, utc(2026, 1, 14), utc(2026, 1, 15), "day"),
        ("Gestern", ("de",), None, utc(2026, 1, 14), utc(2026, 1, 15), "day"),
        ("vorgestern", ("de",), None, utc(2026, 1, 13), utc(2026, 1, 14), "day"),
        ("vor 3 Tagen", ("de",), None, utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        ("vor einem Tag", ("de",), None, utc(2026, 1, 14), utc(2026, 1, 15), "day"),
        ("vor 2 Wochen", ("de",), None, utc(2025, 12, 26), utc(2026, 1, 2), "week"),
        ("vor einer Woche", ("de",), None, utc(2026, 1, 2), utc(2026, 1, 9), "week"),
        ("vor 5 Wochen", ("de",), None, utc(2025, 12, 5), utc(2025, 12, 12), "week"),
        ("vor 2 Stunden", ("de",), None, utc(2026, 1, 15, 8), utc(2026, 1, 15, 9), "hour"),
        ("vor einem Monat", ("de",), None, utc(2025, 11, 16), utc(2025, 12, 16), "month"),
        ("vor 2 Jahren", ("de",), None, utc(2023, 1, 16), utc(2024, 1, 16), "year"),
        # relative, French, from the shop fixture market's feedback
        ("il y a 3 heures", ("fr",), None, utc(2026, 1, 15, 7), utc(2026, 1, 15, 8), "hour"),
        ("il y a une heure", ("fr",), None, utc(2026, 1, 15, 9), utc(2026, 1, 15, 10), "hour"),
        ("aujourd'hui", ("fr",), None, utc(2026, 1, 15), utc(2026, 1, 16), "day"),
        ("hier", ("fr", "en"), None, utc(2026, 1, 14), utc(2026, 1, 15), "day"),
        ("Hier", ("fr",), None, utc(2026, 1, 14), utc(2026, 1, 15), "day"),
        ("avant-hier", ("fr",), None, utc(2026, 1, 13), utc(2026, 1, 14), "day"),
        ("il y a 3 jours", ("fr", "en"), None, utc(2026, 1, 12), utc(2026, 1, 13), "day"),
        ("il y a 1 semaine", ("fr",), None, utc(2026, 1, 2), utc(2026, 1, 9), "week"),
        ("il y a 2 semaines", ("fr",), None, utc(2025, 12, 26), utc(2026, 1, 2), "week"),
        ("il y a un mois", ("fr",), None, utc(2025, 11, 16), utc(2025, 12, 16), "month"),
        ("il y a 2 ans", ("fr",), None, utc(2023, 1, 16), utc(2024, 1, 16), "year"),
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


def test_base_in_another_zone_counts_in_utc() -> None:
    from datetime import timedelta, timezone

    base = datetime(2026, 1, 15, 0, 30, tzinfo=timezone(timedelta(hours=2)))  # 14th 22:30 UTC
    assert parse_date("today", base=base).earliest == utc(2026, 1, 14)


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
    monkeypatch.setattr(dates, "_fast_day", lambda _text, _languages: None)
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
