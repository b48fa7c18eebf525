"""Regular expressions from source files, run under a time limit.

A source file is hand-written and a market's page is hostile: `^(a|a)+$` over a long run of
"a" followed by "!" backtracks for longer than the universe lasts, and Python's `re` holds
the interpreter while it does, so not even SIGTERM gets through. Every pattern a source
file gives (state detectors, `url_regex`, a field's `regex`) therefore goes through the
`regex` package, which keeps Python's syntax (backreferences and lookaround included, which
RE2 refuses and real source files use) and stops a match after `timeout` seconds. A match
that runs out of time raises `PatternTimeout` naming the key, the pattern and the URL: the
page is abandoned with that reason on record, never the crawl.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import regex

if TYPE_CHECKING:
    from regex import Match, Pattern

logger = logging.getLogger(__name__)

#: seconds one match of a source's pattern may take; a page takes a few milliseconds
TIMEOUT = 2.0


class PatternTimeout(Exception):
    """A source's pattern ran out of time on a page: that page is abandoned, with this reason."""

    def __init__(self, key: str, pattern: str, url: str, seconds: float) -> None:
        self.key, self.pattern, self.url = key, pattern, url
        shown = pattern if len(pattern) <= 80 else pattern[:77] + "..."
        super().__init__(
            f"{key}: regular expression {shown!r} took more than {seconds:g} s on {url} "
            "(catastrophic backtracking?); page abandoned"
        )


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str, flags: int = 0) -> Pattern[str]:
    """Compile with `regex` (Python syntax); `regex.error` for a bad pattern."""
    return regex.compile(pattern, flags)


def search(
    pattern: str,
    text: str,
    *,
    key: str,
    url: str,
    flags: int = 0,
    timeout: float | None = None,
) -> Match[str] | None:
    """`re.search`, but a match that takes longer than `timeout` raises `PatternTimeout`."""
    limit = TIMEOUT if timeout is None else timeout
    try:
        return compile_pattern(pattern, flags).search(text, timeout=limit)
    except TimeoutError:
        logger.warning("%s: pattern %r timed out after %s s on %s", key, pattern, limit, url)
        raise PatternTimeout(key, pattern, url, limit) from None


DOTALL = regex.DOTALL
