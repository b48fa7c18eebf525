"""Dates on market pages, absolute or relative, as UTC intervals of what they can mean."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from dateparser.date import DateDataParser
from dateparser.search import search_dates
from dateutil.relativedelta import relativedelta

from pipelines.normalise.errors import DateError
from pipelines.normalise.numbers import amount_problem

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class RelativeWords:
    """How one language says a date relative to the page's clock.

    Every language gets the same interval semantics (`parse_date`): only the words differ.
    `before`/`after` are the words around "N unit" ("vor 3 Tagen", "3 days ago");
    `implicit_one` lets the count be left out ("неделю назад": a week ago).
    """

    numbers: dict[str, int]
    units: dict[str, str]
    days: dict[str, int]  # whole-day words: days back from the base's calendar day
    last: dict[str, str]  # "last week": one unit ago
    now: tuple[str, ...]
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    implicit_one: bool = False


def _units(**forms: str) -> dict[str, str]:
    """`_units(day="day days d")`: every form (space-separated) of each unit."""
    return {form: unit for unit, words in forms.items() for form in words.split()}


RELATIVE: dict[str, RelativeWords] = {
    "en": RelativeWords(
        numbers={"a": 1, "an": 1, "one": 1, "two": 2, "three": 3},
        units=_units(
            second="second seconds sec secs", minute="minute minutes min mins",
            hour="hour hours hr hrs h", day="day days d", week="week weeks w",
            month="month months", year="year years y",
        ),
        days={"today": 0, "yesterday": 1, "day before yesterday": 2,
              "the day before yesterday": 2},
        last={"last week": "week", "last month": "month", "last year": "year"},
        now=("just now", "right now", "now"),
        after=("ago",),
    ),
    "de": RelativeWords(
        numbers={"ein": 1, "eine": 1, "einem": 1, "einer": 1, "einen": 1, "zwei": 2, "drei": 3},
        units=_units(
            second="sekunde sekunden", minute="minute minuten", hour="stunde stunden",
            day="tag tage tagen", week="woche wochen", month="monat monate monaten",
            year="jahr jahre jahren",
        ),
        days={"heute": 0, "gestern": 1, "vorgestern": 2},
        last={"letzte woche": "week", "letzten monat": "month", "letztes jahr": "year"},
        now=("gerade eben", "soeben", "jetzt"),
        before=("vor",),
    ),
    "fr": RelativeWords(
        numbers={"un": 1, "une": 1, "deux": 2, "trois": 3},
        units=_units(
            second="seconde secondes", minute="minute minutes", hour="heure heures",
            day="jour jours", week="semaine semaines", month="mois", year="an ans année années",
        ),
        days={"aujourd'hui": 0, "hier": 1, "avant-hier": 2},
        last={"la semaine dernière": "week", "le mois dernier": "month",
              "l'année dernière": "year"},
        now=("à l'instant", "maintenant"),
        before=("il y a",),
    ),
    "ru": RelativeWords(
        numbers={"один": 1, "одну": 1, "одна": 1, "два": 2, "две": 2, "три": 3},
        units=_units(
            second="секунду секунды секунд", minute="минуту минуты минут", hour="час часа часов",
            day="день дня дней", week="неделю недели недель", month="месяц месяца месяцев",
            year="год года лет",
        ),
        days={"сегодня": 0, "вчера": 1, "позавчера": 2},
        last={"на прошлой неделе": "week", "в прошлом месяце": "month",
              "в прошлом году": "year"},
        now=("только что", "сейчас"),
        after=("назад",),
        implicit_one=True,
    ),
}  # fmt: skip

_NUMBER_WORDS = {w: n for words in RELATIVE.values() for w, n in words.numbers.items()}
_UNIT_WORDS = {w: u for words in RELATIVE.values() for w, u in words.units.items()}
_DAY_WORDS = {w: n for words in RELATIVE.values() for w, n in words.days.items()}
_LAST_WORDS = {w: u for words in RELATIVE.values() for w, u in words.last.items()}
_NOW_WORDS = tuple(w for words in RELATIVE.values() for w in words.now)


def _alternation(words: Sequence[str]) -> str:
    return "|".join(
        re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True)
    )


_COUNT = rf"(?P<n>\d+|{_alternation(list(_NUMBER_WORDS))})"
_UNIT = rf"(?P<unit>{_alternation(list(_UNIT_WORDS))})"
_AFTER = _alternation([w for words in RELATIVE.values() for w in words.after])
_BEFORE = _alternation([w for words in RELATIVE.values() for w in words.before])
_IMPLICIT = _alternation(
    [w for words in RELATIVE.values() if words.implicit_one for w in words.after]
)
_AGO = re.compile(rf"(?<!\w){_COUNT}\s*{_UNIT}\.?\s+(?:{_AFTER})(?!\w)", re.IGNORECASE)
_VOR = re.compile(rf"(?<!\w)(?:{_BEFORE})\s+{_COUNT}\s+{_UNIT}(?!\w)", re.IGNORECASE)
_ONE_AGO = re.compile(rf"(?<!\w){_UNIT}\s+(?:{_IMPLICIT})(?!\w)", re.IGNORECASE)
_WORDS = re.compile(
    r"(?<!\w)(?P<w>" + _alternation([*_DAY_WORDS, *_LAST_WORDS, *_NOW_WORDS]) + r")(?!\w)",
    re.IGNORECASE,
)
# A clock time after a day word: "today at 14:05", "gestern, 09:30", "hier à 9h30", "3:05 pm".
_CLOCK = re.compile(
    r"(?<![\d.:])(?P<h>[01]?\d|2[0-3])\s?[:h]\s?(?P<m>[0-5]\d)(?::[0-5]\d)?"
    r"(?:\s*(?P<ampm>[ap])\.?m\.?)?(?![\w:])",
    re.IGNORECASE,
)

# The dates a page can mean: none older than the hidden services markets run on, and none
# far after the server's clock (a year of slack: a wrong or stale Date header must not
# cost a market all its dates).
MAX_AGE = relativedelta(years=30)
MAX_AHEAD = relativedelta(years=1)
_PERIODS = {"time": "minute", "day": "day", "week": "week", "month": "month", "year": "year"}

#: How far the clock a market counts ages on may be from the page's base (its HTTP Date
#: header, or our fetch time when it sent none): the application behind a market's front
#: server may run minutes off. Every relative interval is widened by it on both sides.
CLOCK_SLACK = timedelta(minutes=15)
# The shortest and longest length of each unit a relative phrase counts in: a market may
# count months as 30 days or as calendar months (28-31 days), years as 365 or 366 days.
_UNIT_SPAN: dict[str, tuple[timedelta, timedelta]] = {
    "second": (timedelta(seconds=1), timedelta(seconds=1)),
    "minute": (timedelta(minutes=1), timedelta(minutes=1)),
    "hour": (timedelta(hours=1), timedelta(hours=1)),
    "day": (timedelta(days=1), timedelta(days=1)),
    "week": (timedelta(weeks=1), timedelta(weeks=1)),
    "month": (timedelta(days=28), timedelta(days=31)),
    "year": (timedelta(days=365), timedelta(days=366)),
}


@dataclass(frozen=True, slots=True)
class DateInterval:
    """The half-open UTC interval ``[earliest, latest)`` a date text can mean.

    ``precision`` is "second", "minute", "hour", "day", "week", "month" or "year": the unit
    the text counted in, not the interval's length (``2 weeks ago`` spans 14 days and
    15 minutes either side at precision "week").
    """

    earliest: datetime
    latest: datetime
    text: str
    precision: str


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` ("Europe/Moscow"); `ValueError` naming it when unknown.

    >>> zone("Europe/Moscow").key
    'Europe/Moscow'
    """
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"{name!r} is not an IANA time zone (such as 'Europe/Moscow')") from exc


def parse_date(
    text: str,
    *,
    base: datetime,
    languages: Sequence[str] = ("en",),
    date_order: str | None = None,
    timezone: tzinfo = UTC,
) -> DateInterval:
    """Read an absolute or relative date into the half-open UTC interval it can mean.

    ``base`` is the server's clock (the HTTP ``Date`` header), which relative phrases count
    back from; ``timezone`` is the market's own zone (``normalise.timezone``), in which it
    writes dates and clock times.

    Relative ages (``N units ago``, ``yesterday``, ``last week``, ``just now``) are rounded
    by each market its own way, and the interval must hold the true instant whichever way
    it was, or the same feedback entry read on two days gives two intervals that merely
    touch and is counted twice. For an elapsed time e (base − instant), ``N units`` is
    ``floor(e) = N`` (e in [N, N+1)), ``round(e) = N`` ([N−½, N+½)), ``ceil(e) = N``
    ((N−1, N]) or a calendar count (``yesterday`` = the market's previous calendar day,
    in any zone: e in (N−1, N+1)). Their union is N−1 < e < N+1 units, so the interval is
    ``[base − (N+1)·unit, base − max(N−1, 0)·unit)``, with months
    counted as 28-31 days and years as 365-366, widened by ``CLOCK_SLACK`` on both sides
    for the market's clock. A day word is ``N days ago`` (``today`` N = 0, ``yesterday``
    N = 1, ``vorgestern`` N = 2); ``last week`` is one week ago; ``now`` zero hours ago.

    A day word with a clock time (``today at 14:05``, ``gestern 09:30``) is that minute
    of the market's calendar day in ``timezone``; absolute dates (``12 Jan 2026``,
    ``March 2024``, ``2026-01-12 14:30``) are the whole day, month or year, or the
    minute, shown, in ``timezone`` unless the text names a zone. Absolute dates are what the
    market recorded and are not widened.

    A date that starts more than 30 years before ``base`` or more than a year after it
    ("3000 years ago", "-2 days ago", "01/01/2099") raises ``DateError``: a typo, a
    placeholder or an attack, never what the market meant.

    >>> base = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    >>> d = parse_date("yesterday", base=base); (d.earliest.isoformat(), d.precision)
    ('2026-01-13T10:15:00+00:00', 'day')
    >>> parse_date("yesterday", base=base).latest.isoformat()
    '2026-01-15T10:45:00+00:00'
    >>> moscow = zone("Europe/Moscow")
    >>> parse_date("today at 14:05", base=base, timezone=moscow).earliest.isoformat()
    '2026-01-15T11:05:00+00:00'
    """
    if base.tzinfo is None:
        raise ValueError("base must be timezone-aware (the server's clock in UTC)")
    base = base.astimezone(UTC)
    try:
        interval = _relative(text, base, timezone) or _absolute(
            text, base, languages, date_order, timezone
        )
    except DateError:
        raise
    except (OverflowError, ValueError) as exc:  # "10**30 hours ago", a year past 9999
        raise DateError(text, f"beyond the dates a calendar holds ({exc})") from exc
    if interval.earliest < base - MAX_AGE:
        raise DateError(text, f"more than {MAX_AGE.years} years before the page was fetched")
    if interval.earliest > base + MAX_AHEAD:
        raise DateError(text, f"more than {MAX_AHEAD.years} year after the page was fetched")
    return interval


def _relative(text: str, base: datetime, timezone: tzinfo) -> DateInterval | None:
    word = _WORDS.search(text)
    match = _AGO.search(text) or _VOR.search(text)
    if match:
        problem = amount_problem(text, *match.span("n"))
        if problem is not None:
            raise DateError(text, problem)
        raw = match.group("n").lower()
        n = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        return _ago(n, _UNIT_WORDS[match.group("unit").lower()], base, text)
    implicit = _ONE_AGO.search(text)
    if implicit:
        return _ago(1, _UNIT_WORDS[implicit.group("unit").lower()], base, text)
    if word is None:
        return None
    w = " ".join(word.group("w").lower().split())
    if w in _DAY_WORDS:
        clock = _CLOCK.search(text, word.end())
        if clock is not None:
            return _day_at(_DAY_WORDS[w], clock, base, timezone, text)
        return _ago(_DAY_WORDS[w], "day", base, text)
    if w in _LAST_WORDS:
        return _ago(1, _LAST_WORDS[w], base, text)
    return _ago(0, "hour", base, text)


def _ago(n: int, unit: str, base: datetime, text: str) -> DateInterval:
    """``n`` units before ``base`` under any rounding (see `parse_date`)."""
    short, long = _UNIT_SPAN[unit]
    earliest = base - (n + 1) * long - CLOCK_SLACK
    latest = base - max(n - 1, 0) * short + CLOCK_SLACK
    return DateInterval(earliest, latest, text, unit)


def _day_at(
    days_back: int, clock: re.Match[str], base: datetime, timezone: tzinfo, text: str
) -> DateInterval:
    """A day word with a clock time in the market's zone: that minute of its calendar day.

    Near midnight the market's clock may already (or still) be on another day than the
    base's: the interval then spans both readings rather than guess one.
    """
    hour, minute = int(clock.group("h")), int(clock.group("m"))
    ampm = (clock.group("ampm") or "").lower()
    if ampm and not 1 <= hour <= 12:
        raise DateError(text, f"{hour} is not an hour on a 12-hour clock")
    if ampm:
        hour = hour % 12 + (12 if ampm == "p" else 0)
    days = {(base + shift).astimezone(timezone).date() for shift in (-CLOCK_SLACK, CLOCK_SLACK)}
    starts = sorted(_local_minute(day, days_back, hour, minute, timezone) for day in days)
    # the later reading is impossible if it lies after the market's clock
    plausible = [s for s in starts if s <= base + CLOCK_SLACK] or starts[:1]
    return DateInterval(plausible[0], plausible[-1] + timedelta(minutes=1), text, "minute")


def _local_minute(day: date, days_back: int, hour: int, minute: int, tz: tzinfo) -> datetime:
    local = datetime.combine(day - timedelta(days=days_back), time(hour, minute), tzinfo=tz)
    return local.astimezone(UTC)


# Unambiguous English day formats read without dateparser, which costs ~1 ms a date: a
# listing page can carry dozens of feedback dates.
_FAST_DAY_FORMATS = ("%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%Y-%m-%d")


def _fast_day(text: str, languages: Sequence[str], timezone: tzinfo) -> DateInterval | None:
    if "en" not in languages:
        return None
    stripped = text.strip()
    for fmt in _FAST_DAY_FORMATS:
        try:
            moment = datetime.strptime(stripped, fmt).replace(tzinfo=timezone)
        except ValueError:
            continue
        return _calendar_unit(moment, "day", text)
    return None


def _absolute(
    text: str, base: datetime, languages: Sequence[str], date_order: str | None, timezone: tzinfo
) -> DateInterval:
    fast = _fast_day(text, languages, timezone)
    if fast is not None:
        return fast
    name = str(getattr(timezone, "key", "UTC"))  # dateparser wants the zone's name
    settings: dict[str, object] = {
        "RELATIVE_BASE": base.astimezone(timezone).replace(tzinfo=None),
        "TIMEZONE": name,
        "TO_TIMEZONE": name,
        "RETURN_AS_TIMEZONE_AWARE": True,
        "RETURN_TIME_AS_PERIOD": True,
        "PREFER_DATES_FROM": "past",
        "PREFER_DAY_OF_MONTH": "first",
    }
    if date_order is not None:
        settings["DATE_ORDER"] = date_order
    parser = DateDataParser(languages=list(languages), settings=settings)
    data = parser.get_date_data(text.strip())
    if data.date_obj is None:
        found = search_dates(text, languages=list(languages), settings=settings)
        if not found:
            raise DateError(text, "no date")
        data = parser.get_date_data(found[0][0])
        if data.date_obj is None:  # pragma: no cover - search_dates found it just before
            raise DateError(text, "no date")
    moment = data.date_obj.astimezone(timezone)
    precision = _PERIODS.get(data.period or "day", "day")
    return _calendar_unit(moment, precision, text)


def _calendar_unit(moment: datetime, precision: str, text: str) -> DateInterval:
    """The minute, day, week, month or year of `moment` on its own zone's calendar, in UTC."""
    if precision == "minute":
        start = moment.replace(second=0, microsecond=0)
        return _utc(start, start + timedelta(minutes=1), text, precision)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if precision == "week":
        start = day - timedelta(days=day.weekday())
        return _utc(start, start + timedelta(weeks=1), text, precision)
    if precision == "month":
        start = day.replace(day=1)
        return _utc(start, start + relativedelta(months=1), text, precision)
    if precision == "year":
        start = day.replace(month=1, day=1)
        return _utc(start, start + relativedelta(years=1), text, precision)
    return _utc(day, day + timedelta(days=1), text, "day")


def _utc(start: datetime, end: datetime, text: str, precision: str) -> DateInterval:
    """Local wall-clock bounds (a day is 23 or 25 hours across a DST change) as UTC."""
    return DateInterval(start.astimezone(UTC), end.astimezone(UTC), text, precision)
