"""The demo market's vendor pages read in Python: the example page object to copy.

`pages.vendor.page_object: crawler.extraction.page_objects.demo.demo_vendor` (or
`crawler.extraction.page_objects.demo_vendor`) in a source file; it receives the response
and returns the same `Extraction` a blueprint would, so everything after extraction is
unchanged.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bs4 import BeautifulSoup

from crawler.extraction.blueprint import Extraction

if TYPE_CHECKING:
    from scrapy.http import TextResponse

VENDOR_FIELDS = (
    "vendor_id",
    "name",
    "rating",
    "feedback_count",
    "joined",
    "ships_from",
    "ships_to",
    "bio",
    "pgp_key",
)


def _text(soup: BeautifulSoup, selector: str) -> str | None:
    node = soup.select_one(selector)
    return " ".join(node.get_text(" ").split()) if node else None


def demo_vendor(response: TextResponse) -> Extraction:
    """The demo market's vendor page, field for field as `config/sources/demo.yaml` reads it."""
    soup = BeautifulSoup(response.text, "html.parser")
    match = re.search(r"/vendor/([^/?#]+)$", response.url)
    bio, key = soup.select_one("div.vendor-bio"), soup.select_one("pre.pgp-key")
    fields = {
        "vendor_id": match.group(1) if match else None,
        "name": _text(soup, "h1.vendor-name"),
        "rating": _text(soup, "span.vendor-rating"),
        "feedback_count": _text(soup, "span.feedback-count"),
        "joined": _text(soup, "span.joined"),
        "ships_from": _text(soup, "dd.ships-from"),
        "ships_to": _text(soup, "dd.ships-to"),
        "bio": str(bio) if bio else None,
        "pgp_key": key.get_text() if key else None,
    }
    missing = [name for name in ("vendor_id", "name") if not fields[name]]
    found = sum(1 for name in VENDOR_FIELDS if fields[name])
    return Extraction(fields=fields, missing=missing, coverage=found / len(VENDOR_FIELDS))
