"""Selectors compiled once and run straight on lxml: what parsel reads, without its per-call cost.

`Selector.css(q).getall()` looks up its translation and its compiled XPath, evaluates it,
wraps every result in a new Selector (and a trackref entry) and serialises it again: about
25 µs a call before any matching. Extraction makes that call for every field and for every
field of every row of every list, about 30 times a page (211k calls over a `demo-large`
run), so most of its time went to the wrapping. `values()` gives exactly what `getall()`
gives, by evaluating the same XPath, translated by the same translator, on the same lxml
node, and serialising as `Selector.get()` does; whatever it does not handle itself (an XML
or JSON selector, a row that is a string, an expression lxml refuses) goes through parsel
unchanged, so even the errors stay parsel's.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from lxml import etree
from parsel.selector import Selector as ParselSelector

try:  # parsel's own translator and namespaces, so the XPath is the one parsel would run
    from parsel.selector import _EXSLT_NAMESPACES, _ctgroup
except ImportError:  # a parsel that renamed its internals: every call goes through parsel
    _EXSLT_NAMESPACES, _ctgroup = frozenset(), None  # type: ignore[assignment]

if TYPE_CHECKING:
    from parsel import Selector

logger = logging.getLogger(__name__)

_HTML_TRANSLATOR = _ctgroup["html"]["_csstranslator"] if _ctgroup is not None else None
#: the namespaces every parsel Selector starts with
_DEFAULT_NAMESPACES = dict(getattr(ParselSelector, "_default_namespaces", {}))


@functools.lru_cache(maxsize=1024)
def compiled(query: str, css: bool) -> etree.XPath | None:
    """`query` (CSS or XPath) compiled as parsel compiles it for an HTML selector; None when
    translation or compilation fails, so that parsel raises its own error for it."""
    try:
        xpath = _HTML_TRANSLATOR.css_to_xpath(query) if css else query
        namespaces = {  # parsel gives an XPath only the EXSLT prefixes it names
            prefix: uri
            for prefix, uri in _DEFAULT_NAMESPACES.items()
            if uri not in _EXSLT_NAMESPACES or f"{prefix}:" in xpath
        }
        return etree.XPath(xpath, namespaces=namespaces, smart_strings=False)
    except Exception:  # cssselect's and lxml's errors alike: parsel reports them
        return None


def _fast(node: Selector) -> bool:
    """A node this module reads itself: an HTML element with parsel's default namespaces."""
    return (
        node.type == "html"
        and isinstance(node.root, etree._Element)
        and node.namespaces == _DEFAULT_NAMESPACES
    )


def select(node: Selector, query: str, *, css: bool) -> list[Any] | None:
    """What the XPath of `query` returns on `node` (a scalar as a one-item list, as parsel
    has it); None when parsel must answer instead."""
    if _HTML_TRANSLATOR is None or not _fast(node):
        return None
    xpath = compiled(query, css)
    if xpath is None:
        return None
    try:
        result = xpath(node.root)
    except etree.XPathError:  # parsel raises its own ValueError for it
        return None
    return result if isinstance(result, list) else [result]


def _serialised(value: Any) -> str:
    """`Selector.get()` of an HTML selector whose root is `value`."""
    if isinstance(value, str):  # text and attribute values (smart strings are off)
        return value
    try:
        return etree.tostring(value, method="html", encoding="unicode", with_tail=False)
    except (AttributeError, TypeError):
        if value is True:
            return "1"
        if value is False:
            return "0"
        return str(value)


def values(node: Selector, query: str, *, css: bool) -> list[str]:
    """`node.css(query).getall()` (or `.xpath`), the same strings in the same order."""
    found = select(node, query, css=css)
    if found is None:
        return (node.css(query) if css else node.xpath(query)).getall()
    return [_serialised(v) for v in found]


def matches(node: Selector, query: str, *, css: bool) -> bool:
    """`bool(node.css(query))` (or `.xpath`): whether the selector selects anything."""
    found = select(node, query, css=css)
    if found is None:
        return bool(node.css(query) if css else node.xpath(query))
    return bool(found)
