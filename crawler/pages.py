"""Turn one response into a PageItem: state, raw fields, links. No Scrapy engine needed.

The spider and the replay tests share this, so a saved page is read exactly as a live one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from scrapy.http import TextResponse

from crawler.deep_html import PAGE_MAX_DEPTH, flatten, nesting_depth, parser_gave_up
from crawler.extraction.blueprint import Extraction, extract_page, extract_value
from crawler.extraction.compiled import values
from crawler.extraction.guarded import run_page_object
from crawler.items import PageItem
from crawler.pagestate import CONTENT_STATES, RATES_STATE, classify
from pipelines.normalise.text import MAX_DEPTH as TEXT_MAX_DEPTH
from pipelines.store.pages import SECRET_HEADERS

if TYPE_CHECKING:
    from scrapy.http import Response

    from crawler.sources.model import PageBlueprint, Source


def server_date(response: Response) -> datetime | None:
    """The market's own clock, against which its "3 days ago" is meant."""
    raw = response.headers.get(b"Date")
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(raw.decode("latin-1"))
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _redirects(response: Response) -> list[str]:
    """The URLs requested before redirects led here (Scrapy keeps them in the meta)."""
    request = response.request
    return list(request.meta.get("redirect_urls", [])) if request is not None else []


def public_headers(response: Response) -> dict[str, str]:
    """Response headers worth archiving; cookies and credentials are never stored."""
    return {
        key.decode("latin-1"): b", ".join(values).decode("latin-1")
        for key, values in response.headers.items()
        if key.decode("latin-1").lower() not in SECRET_HEADERS
    }


def _extract(blueprint: PageBlueprint, response: TextResponse) -> Extraction:
    if blueprint.page_object:  # installed code only, under a time limit (crawler.extraction)
        return run_page_object(blueprint.page_object, response, blueprint.page_object_timeout)
    return extract_page(blueprint, response.selector, response.url)


def _links(source: Source, response: TextResponse) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for kind, selectors in source.follow.model_dump().items():
        urls: list[str] = []
        for selector in selectors:
            is_xpath = selector.startswith(("/", "("))
            hrefs = values(response.selector, selector, css=not is_xpath)
            urls.extend(urljoin(response.url, h.strip()) for h in hrefs if h.strip())
        found[kind] = list(dict.fromkeys(urls))
    return found


def undecodable(response: TextResponse) -> list[str]:
    """A problem when the body has bytes its encoding cannot decode (read as U+FFFD)."""
    if "\ufffd" not in response.text:
        return []
    try:
        response.body.decode(response.encoding)
    except UnicodeDecodeError as exc:
        return [
            f"page: bytes at offset {exc.start} are not valid {response.encoding} "
            f"({exc.reason}); read with replacement characters (U+FFFD), raw bytes archived"
        ]
    except LookupError:  # an encoding w3lib knows and Python does not: nothing to say
        return []
    return []


def too_deep_fields(fields: dict[str, Any]) -> list[str]:
    """A problem per HTML field nested deeper than the text normaliser shapes."""
    problems = []
    for name, value in fields.items():
        for text in value if isinstance(value, list) else [value]:
            # a tag is at least three characters: shorter values cannot be that deep
            if not isinstance(text, str) or len(text) < 3 * TEXT_MAX_DEPTH or "<" not in text:
                continue
            depth = nesting_depth(text)
            if depth > TEXT_MAX_DEPTH:
                problems.append(
                    f"field {name}: HTML nested {depth} elements deep (over {TEXT_MAX_DEPTH}); "
                    "read as plain text below that depth"
                )
                break
    return problems


def _rates_page(source: Source, response: Response, item: PageItem) -> PageItem:
    """The rates a source's rates page shows; they hold for the whole run."""
    assert isinstance(response, TextResponse)  # classify() gives `rates` to text only
    item.problems.extend(undecodable(response))
    if source.rates is None:  # refused on load; kept for a source built in code
        item.problems.append("rates page: the source has no `rates` rule to read it with")
        return item
    rates = extract_value(source.rates, response.selector, response.url, "rates")
    item.rates = rates if isinstance(rates, list) else [rates] if rates else []
    if not item.rates:
        item.problems.append("rates page: the `rates` rule found no rate on it")
    return item


def read_page(
    source: Source,
    response: Response,
    kind: str,
    *,
    fetched_at: datetime | None = None,
    links: bool = True,
) -> PageItem:
    """Classify, then extract only when the page is the content page we asked for.

    A live response was classified already by the challenge middleware (`page_state` in
    its meta); a saved one is classified here. A reparse follows no link, so it passes
    `links=False` and skips the selectors of `follow:` (about an eighth of its time).
    """
    request = response.request
    known = request.meta.get("page_state") if request is not None else None
    state = known or classify(source, response, kind)
    item = PageItem(
        source=source.id,
        url=response.url,
        kind=kind,
        state=state,
        fetched_at=fetched_at or datetime.now(UTC),
        status=response.status,
        body=response.body,
        headers=public_headers(response),
        server_date=server_date(response),
        redirected_from=_redirects(response),
    )
    if state == RATES_STATE:  # only the source's `rates` rule is read there
        return _rates_page(source, response, item)
    if state not in CONTENT_STATES:
        return item
    assert isinstance(response, TextResponse)  # classify() gives content states to text only
    item.problems.extend(undecodable(response))
    if parser_gave_up(response.selector.root):
        # Read a copy with the deepest tags dropped; the archived body stays as it came.
        response = response.replace(body=flatten(response.text), encoding="utf-8")
        item.problems.append(
            f"page: elements nested more than {PAGE_MAX_DEPTH} deep, where the HTML parser "
            "would stop and lose the rest; read with the deeper tags dropped, their text kept"
        )
    if source.rates is not None:
        rates = extract_value(source.rates, response.selector, response.url, "rates")
        item.rates = rates if isinstance(rates, list) else [rates] if rates else []
    extraction = _extract(source.pages[state], response)  # type: ignore[index]
    item.fields, item.missing, item.coverage = (
        extraction.fields,
        extraction.missing,
        extraction.coverage,
    )
    item.problems.extend(extraction.dropped_rows)
    item.problems.extend(extraction.problems)
    item.list_totals = extraction.list_totals
    item.problems.extend(too_deep_fields(item.fields))
    if links:
        item.links = _links(source, response)
    return item
