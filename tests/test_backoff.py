"""How long the crawler waits before asking again: Retry-After honoured, jitter bounded."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime

import pytest

import crawler.backoff
from crawler.backoff import backoff_delay, parse_retry_after

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (b"120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),
        ("Sun, 01 Mar 2026 11:59:00 GMT", 0.0),  # a date in the past: ask now
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(header: bytes | str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOON) == seconds


@pytest.mark.parametrize("attempt", [1, 2, 3, 6, 12])
def test_backoff_is_jittered_exponential_and_capped(attempt: int) -> None:
    delays = [backoff_delay(attempt, base=1.0, cap=20.0) for _ in range(200)]
    assert all(0 <= d <= min(20.0, 2 ** (attempt - 1)) for d in delays)
    assert len(set(delays)) > 150, "no jitter"


def test_retry_after_is_the_floor_and_the_cap_still_holds() -> None:
    delays = [backoff_delay(1, base=1.0, cap=60.0, retry_after=10) for _ in range(200)]
    assert all(10 <= d <= 15 for d in delays)
    assert backoff_delay(1, base=1.0, cap=60.0, retry_after=600) == 60.0


def test_doctests() -> None:
    assert doctest.testmod(crawler.backoff).failed == 0
