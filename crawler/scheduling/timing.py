"""Durations, allowed-hours windows, backoff, and when a source is next due."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from croniter import croniter

if TYPE_CHECKING:
    import random

logger = logging.getLogger(__name__)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
DAY = 24 * 60


def parse_duration(value: object) -> float:
    """Seconds in a duration: a number of seconds, or units such as `24h`, `90m`, `1h30m`.

    >>> parse_duration("90m"), parse_duration("1h30m"), parse_duration(45), parse_duration("2d")
    (5400.0, 5400.0, 45.0, 172800.0)
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 24h, 90m or 30s")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("expected a duration of zero seconds or more")
        return float(value)
    text = str(value).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if not text or _DURATION.sub("", text):
        raise ValueError("expected a duration such as 24h, 90m, 30s or 1h30m")
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))


def format_duration(seconds: float) -> str:
    """`5400` -> `1h30m`: durations as the schedule file writes them.

    >>> format_duration(5400), format_duration(86400), format_duration(4.5)
    ('1h30m', '1d', '4.5s')
    """
    if seconds < 60 and seconds != int(seconds):
        return f"{seconds:g}s"
    rest, parts = round(seconds), []
    for unit in ("d", "h", "m", "s"):
        size = int(_UNITS[unit])
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class HoursWindow:
    """Hours of the UTC day when a source may start, `01:00-06:00`; may cross midnight."""

    start: int  # minutes after midnight UTC
    end: int  # exclusive; 24:00 is 1440

    @classmethod
    def parse(cls, text: str) -> HoursWindow:
        """`"22:00-04:00"` -> a window from 22:00 to 04:00 the next day.

        >>> HoursWindow.parse("22:00-04:00").length
        datetime.timedelta(seconds=21600)
        """
        match = _WINDOW.match(text)
        if match is None:
            raise ValueError('expected hours of the UTC day such as "01:00-06:00"')
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{text!r} is not a time range between 00:00 and 24:00")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end or (start == 0 and end == DAY):
            raise ValueError(f"{text!r}: leave allowed_hours out to allow every hour")
        return cls(start, end % DAY)

    def __str__(self) -> str:
        return (
            f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"
        )

    @property
    def length(self) -> timedelta:
        return timedelta(minutes=(self.end - self.start) % DAY)

    def contains(self, when: datetime) -> bool:
        minute = when.astimezone(UTC).hour * 60 + when.astimezone(UTC).minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def next_start(self, when: datetime) -> datetime:
        """The first start of this window at or after `when`."""
        midnight = datetime.combine(when.astimezone(UTC).date(), time(), tzinfo=UTC)
        start = midnight + timedelta(minutes=self.start)
        return start if start >= when else start + timedelta(days=1)


@dataclass(frozen=True)
class Backoff:
    """After n consecutive failures a source's delay is multiplied by factor**n, up to cap."""

    factor: float = 1.5
    cap: float = 86400.0  # seconds

    def delay(self, base: float, failures: int) -> float:
        """The delay after `failures` failures in a row; never shorter than `base`.

        >>> [Backoff(1.5, 10).delay(4, n) for n in range(4)]
        [4.0, 6.0, 9.0, 10.0]
        """
        if failures <= 0:
            return float(base)
        return float(max(base, min(base * self.factor**failures, self.cap)))


@dataclass(frozen=True)
class Timing:
    """The clock of one source: `every` seconds or a `cron` expression, jitter, hours."""

    every: float | None = None
    cron: str | None = None
    jitter: float = 0.0
    allowed_hours: HoursWindow | None = None

    def regular_due(self, started: datetime) -> datetime:
        """When the next run is due after a run started at `started`, before jitter."""
        if self.cron is not None:
            return croniter(self.cron, started.astimezone(UTC)).get_next(datetime)
        assert self.every is not None
        return started + timedelta(seconds=self.every)

    def next_due(
        self, started: datetime, *, failures: int, backoff: Backoff, rng: random.Random
    ) -> datetime:
        """Last start + interval (or the next cron time), backed off after failures, plus a
        random jitter in [0, jitter], moved into the next allowed window if outside one."""
        due = self.regular_due(started)
        if failures > 0:
            backed_off = backoff.delay((due - started).total_seconds(), failures)
            due = started + timedelta(seconds=backed_off)
            if self.cron is not None:  # stay on the cron grid
                due = croniter(self.cron, due - timedelta(seconds=1)).get_next(datetime)
        return self.within_hours(due + timedelta(seconds=rng.uniform(0, self.jitter)), rng)

    def within_hours(self, due: datetime, rng: random.Random) -> datetime:
        """`due` itself when allowed, else the next window's start plus a jitter inside it."""
        window = self.allowed_hours
        if window is None or window.contains(due):
            return due
        spread = min(self.jitter, window.length.total_seconds() - 1)
        return window.next_start(due) + timedelta(seconds=rng.uniform(0, max(spread, 0.0)))


def next_utc_midnight(when: datetime) -> datetime:
    """When a new UTC day (and page budget) begins after `when`."""
    return datetime.combine(when.astimezone(UTC).date(), time(), tzinfo=UTC) + timedelta(days=1)


def utc_midnight(when: datetime) -> datetime:
    """The start of `when`'s UTC day."""
    return datetime.combine(when.astimezone(UTC).date(), time(), tzinfo=UTC)
