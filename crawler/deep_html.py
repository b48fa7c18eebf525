"""Pages nested deeper than the HTML parser goes: flattened below a depth, so the rest is read.

libxml2 (under lxml and parsel) stops at 2048 open elements and drops everything after: a
description nested 100,000 deep would cost the listing its feedback and any later field.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxml.html import HtmlElement

#: open elements kept; deeper tags are dropped (their text kept). Real pages nest about 30.
PAGE_MAX_DEPTH = 512
#: how far down the open elements an end tag looks for its start tag (else it is stray):
#: a bound, so that a flood of stray end tags under a deep page stays linear
_MATCH_WITHIN = 64

_VOID = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta",
    "param", "source", "track", "wbr",
})  # fmt: skip
# Comments, raw-text elements (whose "<div>" is text), then one tag: name, and a self-close.
_TOKEN = re.compile(
    r"<!--.*?(?:-->|$)|<(script|style|textarea|title)\b[^>]*>.*?(?:</\1\s*>|$)"
    r"|<(/?)([A-Za-z][^\s/>]*)(?:[^>]*?)(/?)>",
    re.DOTALL | re.IGNORECASE,
)


def parser_gave_up(root: HtmlElement, depth: int = PAGE_MAX_DEPTH) -> bool:
    """Whether the parsed tree ends more than `depth` elements down: where the parser stopped.

    A parser that gave up leaves its open elements as the tree's last path; a page parsed to
    its end closes them (a footer last). Only the last path is walked: cheap on every page.
    """
    node, steps = root, 0
    while len(node):
        node, steps = node[-1], steps + 1
        if steps > depth:
            return True
    return False


def nesting_depth(html: str) -> int:
    """How many elements deep `html` nests (void and self-closed tags do not count).

    >>> nesting_depth("<div><p>a<br>b</p><p>c</p></div>")
    2
    """
    open_tags: list[str] = []
    deepest = 0
    for match in _TOKEN.finditer(html):
        closing, name, closed = match.group(2, 3, 4)
        if name is None:
            deepest = max(deepest, len(open_tags) + (1 if match.group(1) else 0))
            continue
        name = name.lower()
        if closing:
            at = _opened_at(open_tags, name)
            if at is not None:
                del open_tags[at:]
        elif name not in _VOID and not closed:
            open_tags.append(name)
            deepest = max(deepest, len(open_tags))
    return deepest


def flatten(html: str, depth: int = PAGE_MAX_DEPTH) -> str:
    """`html` with every tag below `depth` open elements dropped; text and all else kept.

    >>> flatten("<b><i><u>deep</u></i></b><p>after</p>", depth=1)
    '<b>deep</b><p>after</p>'
    """
    out: list[str] = []
    kept_until = 0
    open_tags: list[str] = []
    for match in _TOKEN.finditer(html):
        closing, name, closed = match.group(2, 3, 4)
        if name is None:  # a comment or a raw-text element: kept as it is
            continue
        name = name.lower()
        drop = False
        if closing:
            at = _opened_at(open_tags, name)
            if at is not None:
                drop = at >= depth
                del open_tags[at:]
        elif name not in _VOID and not closed:
            drop = len(open_tags) >= depth
            open_tags.append(name)
        if drop:
            out.append(html[kept_until : match.start()])
            kept_until = match.end()
    out.append(html[kept_until:])
    return "".join(out)


def _opened_at(open_tags: list[str], name: str) -> int | None:
    """Where the nearest open `name` is (within `_MATCH_WITHIN` of the top), or None."""
    for at in range(len(open_tags) - 1, max(len(open_tags) - _MATCH_WITHIN, 0) - 1, -1):
        if open_tags[at] == name:
            return at
    return None
