"""A page's content digest: its SHA-256 with the source's volatile regions cut out.

Real markets never serve the same bytes twice (a form token, the server's clock, "users
online"), so the raw SHA-256 calls every page new on every crawl. A source declares those
regions by selector (`volatile:` in its file, recorded in the run's `config`); this digest
ignores them, so a page whose only change is noise is recognised as unchanged and its raw
bytes cost a tiny delta (pipelines/store/pages.py). The raw bytes and their SHA-256 stay
the evidence; the digest only decides "same page as last time".
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import lxml.html
from cssselect import GenericTranslator
from lxml import etree

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

logger = logging.getLogger(__name__)

# Bumped when the digest's meaning changes: a head stored under another version is never
# compared (its page is stored as changed once, and the head then carries the new one).
DIGEST_VERSION = "v1"


def region_xpath(region: Mapping[str, str]) -> str:
    """The XPath of one declared region (`{"css": ...}` or `{"xpath": ...}`)."""
    if "css" in region:
        return str(GenericTranslator().css_to_xpath(region["css"]))
    return str(region["xpath"])


@lru_cache(maxsize=64)
def _compiled(xpaths: tuple[str, ...]) -> tuple[etree.XPath, ...]:
    return tuple(etree.XPath(x) for x in xpaths)


def region_key(regions: Iterable[Mapping[str, str]]) -> tuple[str, ...]:
    """The regions as a hashable key (their XPaths, in order)."""
    return tuple(region_xpath(r) for r in regions)


def content_digest(body: bytes, xpaths: Sequence[str]) -> str | None:
    """SHA-256 of the page serialised without the elements the regions match (each with
    its text; the text after it stays), prefixed with DIGEST_VERSION; 128 bits of it, as
    it only tells two pages of one URL apart. None for a body that is not HTML lxml can
    read (such a page is always stored as changed)."""
    try:
        root = lxml.html.document_fromstring(body)
    except (etree.LxmlError, ValueError) as exc:
        logger.debug("no content digest: %s", exc)
        return None
    for xpath in _compiled(tuple(xpaths)):
        found: Any = xpath(root)
        for element in found if isinstance(found, list) else ():
            if isinstance(element, etree._Element) and element.getparent() is not None:
                element.drop_tree()
    canonical = etree.tostring(root, method="html", encoding="utf-8")
    return f"{DIGEST_VERSION}:{hashlib.sha256(canonical).hexdigest()[:32]}"
