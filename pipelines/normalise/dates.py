"""Dates on market pages, absolute or relative, as UTC intervals of what they can mean."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

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
            minute="second seconds sec secs minute minutes min mins",
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
            minute="sekunde sekunden minute minuten", hour="stunde stunden",
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
            minute="seconde secondes minute minutes", hour="heure heures", day="jour jours",
            week="semaine semaines", month="mois", year="an ans année années",
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
            minute="секунду секунды секунд минуту минуты минут", hour="час часа часов",
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

# The dates a page can mean: none older than the hidden services markets run on, and none
# far after the server's clock (a year of slack: a wrong or stale Date header must not
# cost a market all its dates).
MAX_AGE = relativedelta(years=30)
MAX_AHEAD = relativedelta(years=1)
_PERIODS = {"time": "minute", "day": "day", "week": "week", "month": "month", "year": "year"}


@dataclass(frozen=True, slots=True)
class DateInterval:
    """The half-open UTC interval ``[earliest, latest)`` a date text can mean.

    ``precision`` is "minute", "hour", "day", "week", "month" or "year": how coarse the text
    was, not the interval's length (``2 weeks ago`` spans 7 days at precision "week").
    """

    earliest: datetime
    latest: datetime
    text: str
    precision: str


def parse_date(
    text: str,
    *,
    base: datetime,
    languages: Sequence[str] = ("en",),
    date_order: str | None = None,
) -> DateInterval:
    """Read an absolute or relative date into the interval it can mean, in UTC.

    ``base`` is the server's clock (the HTTP ``Date`` header), which relative phrases count
    back from. Conventions, all on UTC calendar units:

    * ``N minutes ago`` / ``N hours ago``: the clock hour N hours before the base's hour.
    * ``today``, ``yesterday``, ``N days ago``, ``gestern``: that whole calendar day.
    * ``N weeks ago`` means N×7 ≤ age < (N+1)×7 days, age counted in calendar days: the days
      from base−(N+1)w+1d to base−Nw. ``N months ago`` / ``N years ago`` likewise, with
      calendar months/years (N ≤ age < N+1 months).
    * Absolute dates: the whole day, month (``March 2024``) or year shown; with a clock time,
      that minute. Dates without a zone are read as UTC.

    Sites that floor elapsed seconds ("3 days" = 72–96 h) can put the true instant up to a
    unit before ``earliest``; the intervals are the calendar reading, not a bound on that.

    A date that starts more than 30 years before ``base`` or more than a year after it
    ("3000 years ago", "-2 days ago", "01/01/2099") raises ``DateError``: a typo, a
    placeholder or an attack, never what the market meant.

    >>> base = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
    >>> d = parse_date("yesterday", base=base); (d.earliest.isoformat(), d.precision)
    ('2026-01-14T00:00:00+00:00', 'day')
    >>> parse_date("2 weeks ago", base=base).earliest.date().isoformat()
    '2025-12-26'
    """
    if base.tzinfo is None:
        raise ValueError("base must be timezone-aware (the server's clock in UTC)")
    base = base.astimezone(UTC)
    try:
        interval = _relative(text, base) or _absolute(text, base, languages, date_order)
    except DateError:
        raise
    except (OverflowError, ValueError) as exc:  # "10**30 hours ago", a year past 9999
        raise DateError(text, f"beyond the dates a calendar holds ({exc})") from exc
    if interval.earliest < base - MAX_AGE:
        raise DateError(text, f"more than {MAX_AGE.years} years before the page was fetched")
    if interval.earliest > base + MAX_AHEAD:
        raise DateError(text, f"more than {MAX_AHEAD.years} year after the page was fetched")
    return interval


def _relative(text: str, base: datetime) -> DateInterval | None:
    today = base.replace(hour=0, minute=0, second=0, microsecond=0)
    word = _WORDS.search(text)
    match = _AGO.search(text) or _VOR.search(text)
    if match:
        problem = amount_problem(text, *match.span("n"))
        if problem is not None:
            raise DateError(text, problem)
        raw = match.group("n").lower()
        n = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        return _ago(n, _UNIT_WORDS[match.group("unit").lower()], base, today, text)
    implicit = _ONE_AGO.search(text)
    if implicit:
        return _ago(1, _UNIT_WORDS[implicit.group("unit").lower()], base, today, text)
    if word is None:
        return None
    w = " ".join(word.group("w").lower().split())
    if w in _DAY_WORDS:
        start = today - timedelta(days=_DAY_WORDS[w])
        return DateInterval(start, start + timedelta(days=1), text, "day")
    if w in _LAST_WORDS:
        return _ago(1, _LAST_WORDS[w], base, today, text)
    return _ago(0, "hour", base, today, text)


def _ago(n: int, unit: str, base: datetime, today: datetime, text: str) -> DateInterval:
    if unit in ("minute", "hour"):
        delta = timedelta(minutes=n) if unit == "minute" else timedelta(hours=n)
        start = (base - delta).replace(minute=0, second=0, microsecond=0)
        return DateInterval(start, start + timedelta(hours=1), text, "hour")
    if unit == "day":
        start = today - timedelta(days=n)
        return DateInterval(start, start + timedelta(days=1), text, "day")
    step = {"week": relativedelta(weeks=1), "month": relativedelta(months=1)}.get(
        unit, relativedelta(years=1)
    )
    latest = today - n * step + timedelta(days=1)
    earliest = today - (n + 1) * step + timedelta(days=1)
    return DateInterval(earliest, latest, text, unit)


# Unambiguous English day formats read without dateparser, which costs ~1 ms a date: a
# listing page can carry dozens of feedback dates.
_FAST_DAY_FORMATS = ("%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%Y-%m-%d")


def _fast_day(text: str, languages: Sequence[str]) -> DateInterval | None:
    if "en" not in languages:
        return None
    stripped = text.strip()
    for fmt in _FAST_DAY_FORMATS:
        try:
            moment = datetime.strptime(stripped, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return _calendar_unit(moment, "day", text)
    return None


def _absolute(
    text: str, base: datetime, languages: Sequence[str], date_order: str | None
) -> DateInterval:
    fast = _fast_day(text, languages)
    if fast is not None:
        return fast
    settings: dict[str, object] = {
        "RELATIVE_BASE": base.replace(tzinfo=None),
        "TIMEZONE": "UTC",
        "TO_TIMEZONE": "UTC",
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
    moment = data.date_obj.astimezone(UTC)
    precision = _PERIODS.get(data.period or "day", "day")
    return _calendar_unit(moment, precision, text)


def _calendar_unit(moment: datetime, precision: str, text: str) -> DateInterval:
    if precision == "minute":
        start = moment.replace(second=0, microsecond=0)
        return DateInterval(start, start + timedelta(minutes=1), text, precision)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if precision == "week":
        start = day - timedelta(days=day.weekday())
        return DateInterval(start, start + timedelta(weeks=1), text, precision)
    if precision == "month":
        start = day.replace(day=1)
        return DateInterval(start, start + relativedelta(months=1), text, precision)
    if precision == "year":
        start = day.replace(month=1, day=1)
        return DateInterval(start, start + relativedelta(years=1), text, precision)
    return DateInterval(day, day + timedelta(days=1), text, "day")
