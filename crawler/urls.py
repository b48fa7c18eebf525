"""One page, one identity: canonical URLs, and entity keys read from a link before fetching.

Real markets link one listing under several URLs (`/o/ID/x` from the vendor page,
`/o/ID/slug` from a category) and add per-request tracking parameters to every link. Left
alone, the crawler fetches each listing many times (a "similar products" chain with
tracking tokens never ends) and completeness counts URLs instead of listings. A source
says which query parameters identify a page (`urls.query_params`; the rest are dropped
before comparing, on top of w3lib's canonical form), and a listing or vendor link whose key
the page's `listing_id`/`vendor_id` rule reads from the URL (`url_regex`) is identified
by that key.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from parsel import Selector
from w3lib.url import canonicalize_url

from crawler.extraction.blueprint import extract_value
from crawler.extraction.patterns import PatternTimeout

if TYPE_CHECKING:
    from collections.abc import Collection

    from crawler.sources.model import Source

logger = logging.getLogger(__name__)

KEY_FIELDS = {"listing": "listing_id", "vendor": "vendor_id"}
_NO_DOCUMENT = Selector(text="<html></html>")


def canonical_url(url: str, query_params: Collection[str] | None = None) -> str:
    """w3lib's canonical URL (sorted query, no fragment); with `query_params`, only those
    parameters are kept: the others (tracking tokens, referrers) do not name the page.

    >>> canonical_url("http://m/c?trk=9&page=2#top", ["page"])
    'http://m/c?page=2'
    """
    canonical = canonicalize_url(url)
    if query_params is None:
        return canonical
    parts = urlsplit(canonical)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k in query_params]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def entity_key(source: Source, kind: str, url: str) -> str | None:
    """The listing or vendor id the page's key rule reads from `url` alone, or None when
    the rule reads the page (then only the URL identifies it)."""
    blueprint = source.pages.get(kind)  # type: ignore[call-overload]
    field = KEY_FIELDS.get(kind)
    rule = blueprint.fields.get(field) if blueprint is not None and field else None
    if rule is None or rule.url_regex is None:
        return None
    try:
        value = extract_value(rule, _NO_DOCUMENT, url, key=f"pages.{kind}.fields.{field}")
    except PatternTimeout:
        return None
    return value if isinstance(value, str) and value else None


def page_identity(source: Source, kind: str, url: str) -> str:
    """What makes two URLs the same page of a run: the entity key where the URL holds it,
    else the canonical path and identifying query (whichever mirror served it)."""
    key = entity_key(source, kind, url)
    if key is not None:
        return f"{kind}:{key}"
    parts = urlsplit(canonical_url(url, source.urls.query_params))
    return urlunsplit(("", "", parts.path, parts.query, ""))
