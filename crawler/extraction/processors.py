"""Small text processors a blueprint field may name, applied in order."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urljoin

# HTML's whitespace (what a browser collapses); a no-break space is text the market wrote.
_HTML_SPACE = " \t\n\r\f"
_SPACES = re.compile(f"[{_HTML_SPACE}]+")


def strip(value: str, _url: str) -> str:
    """Collapse runs of markup whitespace, as a browser shows them: indentation is not
    content, but a no-break space ("1\u00a0250 ₽") is kept, so the raw text stays as shown.

    >>> strip("  Sold by\\n   k***9 ", "")
    'Sold by k***9'
    >>> strip(" 2\u202f819,50\u00a0₽\\n", "")
    '2\u202f819,50\u00a0₽'
    """
    return _SPACES.sub(" ", value).strip(_HTML_SPACE)


def lower(value: str, _url: str) -> str:
    return value.lower()


def upper(value: str, _url: str) -> str:
    return value.upper()


def absolute_url(value: str, url: str) -> str:
    """Relative links only make sense against the page they were on.

    >>> absolute_url("/vendor/x", "http://m.example/listing/1")
    'http://m.example/vendor/x'
    """
    return urljoin(url, value)


def html_to_text(value: str, _url: str) -> str:
    """Descriptions keep their paragraphs; the normaliser owns that conversion."""
    from pipelines.normalise.text import html_to_text as convert

    return convert(value)


SINGLE: dict[str, Callable[[str, str], str]] = {
    "strip": strip,
    "lower": lower,
    "upper": upper,
    "absolute_url": absolute_url,
    "html_to_text": html_to_text,
}
"""Processors applied to each value; `join` and `join_lines` act on the list of values."""


def join(values: list[str], separator: str = " ") -> str:
    return separator.join(v for v in values if v)
