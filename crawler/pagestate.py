"""Decide what a fetched page is before anything is extracted from it.

A login wall or a DDoS queue served with HTTP 200 must never be read as an empty index;
so every response gets a state first, from the source's detectors, then from its status.
The detectors' patterns come from a source file and run under a time limit
(`crawler.extraction.patterns`): a pattern that backtracks for ever raises `PatternTimeout`
and the page is abandoned with that reason instead of wedging the crawl.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.http import TextResponse

from crawler.extraction.compiled import matches
from crawler.extraction.patterns import search

if TYPE_CHECKING:
    from scrapy.http import Response

    from crawler.sources.model import Source, StateDetector

CONTENT_STATES: frozenset[str] = frozenset({"index", "listing", "vendor"})
#: a source's rates page (`rates_page`): read for its exchange rates only, once per run
RATES_STATE = "rates"


def _matches(detector: StateDetector, response: Response, key: str) -> bool:
    if detector.status and response.status not in detector.status:
        return False
    url = response.url
    if detector.url_regex and not search(detector.url_regex, url, key=f"{key}.url_regex", url=url):
        return False
    markup_rule = detector.css or detector.xpath or detector.text_regex
    # Markup rules only mean something on markup (a JSON body has no `form#login`).
    if markup_rule and (
        not isinstance(response, TextResponse) or response.selector.type not in ("html", "xml")
    ):
        return False
    if detector.css and not matches(response.selector, detector.css, css=True):  # type: ignore[attr-defined]
        return False
    if detector.xpath and not matches(response.selector, detector.xpath, css=False):  # type: ignore[attr-defined]
        return False
    text = response.text if isinstance(response, TextResponse) else ""
    return not (
        detector.text_regex
        and not search(detector.text_regex, text, key=f"{key}.text_regex", url=url)
    )


def _by_status(status: int) -> str | None:
    if status in (404, 410):
        return "not_found"
    if status == 429:
        return "rate_limited"
    if status == 503:
        return "maintenance"
    if status >= 400:
        return "error"
    return None


def classify(source: Source, response: Response, expected_kind: str) -> str:
    """The page state: detectors first, then HTTP status, then the kind we asked for.

    Raises `PatternTimeout` when one of the source's patterns runs out of time on the page.
    """
    for number, detector in enumerate(source.states):
        if _matches(detector, response, f"states[{number}]"):
            return detector.state
    by_status = _by_status(response.status)
    if by_status:
        return by_status
    content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1").split(";")[0]
    allowed = content_type.strip().lower() in source.content_types
    if not allowed or not isinstance(response, TextResponse):
        return "other"
    if expected_kind == RATES_STATE:
        return RATES_STATE
    blueprint = source.pages.get(expected_kind)  # type: ignore[call-overload]
    if blueprint is None:
        return "other"
    key = f"pages.{expected_kind}.url_regex"
    if blueprint.url_regex and not search(
        blueprint.url_regex, response.url, key=key, url=response.url
    ):
        return "other"
    return expected_kind
