"""Listing descriptions and other free text: clean whitespace, HTML to plain text."""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from bs4 import BeautifulSoup, NavigableString, Tag

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bs4 import PageElement

_SPACES = re.compile(r"[ \t\f\v\u00a0\u2007\u202f\u2009\u3000]+")
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_BLANK_RUN = re.compile(r"\n{3,}")
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot",
    "tr", "ul",
})  # fmt: skip
_LINES = frozenset({"li", "dt", "dd", "tr"})  # one line each, not a paragraph
_CELLS = frozenset({"td", "th"})  # a space between cells, whatever the source spacing
_DROP = frozenset({"script", "style", "noscript", "template", "head"})
#: elements nested deeper than this shape no paragraphs or lines; their text is kept
MAX_DEPTH = 100


def clean_text(text: str) -> str:
    """Collapse whitespace within lines, keep line breaks and paragraph breaks ("\\n\\n").

    NBSP and other odd spaces become plain spaces, zero-width characters go, the text is
    NFC-normalised, and runs of blank lines become one blank line.

    >>> clean_text("  Pure\\u00a0 MDMA  \\r\\n\\n\\n\\n Ships   daily ")
    'Pure MDMA\\n\\nShips daily'
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """Plain text of an HTML description: ``<p>`` and blocks to paragraphs, ``<br>`` to lines.

    Whitespace inside the source (its own newlines) collapses as a browser would; ``<pre>``
    keeps its lines. Scripts and styles are dropped.

    >>> html_to_text("<p>Top   quality</p><p>Stealth<br>shipping</p>")
    'Top quality\\n\\nStealth\\nshipping'
    """
    soup = BeautifulSoup(html, "html.parser")
    parts: list[str | int] = []
    _render(soup, parts)
    out: list[str] = []
    pending = 0  # newlines owed; adjacent block edges share one break, the widest
    for part in parts:
        if isinstance(part, int):
            pending = max(pending, part)
        elif part:
            out.append("\n" * pending + part)
            pending = 0
    return clean_text("".join(out))


def _render(root: Tag, parts: list[str | int]) -> None:
    """Walk the tree with a stack of its own, not Python's: a description may nest 100,000
    deep. Below `MAX_DEPTH` tags no longer shape the text; their text is still kept."""
    stack: list[tuple[Iterator[PageElement], bool, int]] = [(iter(root.children), False, 0)]
    while stack:
        children, pre, _ = stack[-1]
        child = next(children, None)
        if child is None:
            gap = stack.pop()[2]
            if gap:
                parts.append(gap)
            continue
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # skips comments, doctypes, CDATA
                parts.append(str(child) if pre else re.sub(r"\s+", " ", str(child)))
            continue
        if not isinstance(child, Tag) or child.name in _DROP:
            continue
        if child.name == "br":
            parts.append("\n")  # a literal break: two <br> make a blank line
            continue
        shaped = len(stack) <= MAX_DEPTH
        gap = (1 if child.name in _LINES else 2) if shaped and child.name in _BLOCKS else 0
        if gap:
            parts.append(gap)
        elif shaped and child.name in _CELLS:
            parts.append(" ")
        stack.append((iter(child.children), pre or child.name == "pre", gap))
