"""How long to wait before asking a struggling market (or circuit) again.

Jittered exponential backoff from tenacity, so parallel retries do not march in step; a
server's own `Retry-After` is honoured as the floor.
"""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime

from tenacity import RetryCallState, wait_random_exponential


def backoff_delay(
    attempt: int, *, base: float, cap: float, retry_after: float | None = None
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1).

    >>> 0 <= backoff_delay(1, base=1.0, cap=60.0) <= 2
    True
    >>> 30 <= backoff_delay(3, base=1.0, cap=60.0, retry_after=30) <= 45
    True
    """
    if retry_after is not None:
        # The server said when; a little jitter keeps a crowd of requests from returning
        # at the same instant.
        return min(cap, retry_after + random.uniform(0, retry_after / 2))
    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return float(wait_random_exponential(multiplier=base, max=cap)(state))


def parse_retry_after(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds: a number of seconds, or an HTTP date.

    >>> parse_retry_after(b"120")
    120.0
    >>> noon = datetime(2015, 10, 21, 12, 0, tzinfo=UTC)
    >>> parse_retry_after("Wed, 21 Oct 2015 12:00:10 GMT", noon)
    10.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
