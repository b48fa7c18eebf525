"""Search terms of a version: folded words plus `facet=value` terms, for one multikey index.

The server we test on has no text index, so word search is an equality on a token array
(`notes/mongodb-store.md`). Filters that are not words (vendor, category, ships from/to)
ride in the same array as `facet=value` terms, so every search starts with one
equality-led lookup on the same index, whatever the researcher asked for.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

logger = logging.getLogger(__name__)

# Bump when the terms a version gets change: `darkarchive reindex` rewrites older ones.
TOKENS_VERSION = 1

_WORD = re.compile(r"[^\W_]+")
_SPACE = re.compile(r"\s+")
FACETS = ("vendor", "category", "from", "to")


def fold(text: str) -> str:
    """Lower-case and strip accents, so `Crème` finds `creme` and `CRÈME`.

    >>> fold("Crème BRÛLÉE Straße")
    'creme brulee strasse'
    """
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.casefold()


def words(text: str | None) -> list[str]:
    """The searchable words of a text, in order: folded, split at anything not a letter
    or digit; one-letter words are dropped (they match nearly everything), numbers kept.

    >>> words("Fresh Kush - 1 oz (Ámsterdam's finest)")
    ['fresh', 'kush', '1', 'oz', 'amsterdam', 'finest']
    """
    if not text:
        return []
    return [w for w in _WORD.findall(fold(text)) if len(w) > 1 or w.isdigit()]


def facet(name: str, value: str) -> str:
    """One filter term, e.g. `facet("to", "DE") == "to=de"`; `=` never occurs in a word.

    >>> facet("category", "  Prescription   Drugs ")
    'category=prescription drugs'
    """
    if name not in FACETS:
        raise ValueError(f"unknown search facet {name!r}; expected one of {FACETS}")
    return f"{name}={_SPACE.sub(' ', fold(value)).strip()}"


def listing_tokens(content: Mapping[str, Any]) -> list[str]:
    """Terms of a listing: words of title, description, category path and vendor, and the
    vendor, category, ships-from and ships-to facets."""
    category = [c for c in content.get("category_path") or [] if isinstance(c, str)]
    vendor = content.get("vendor") if isinstance(content.get("vendor"), str) else None
    terms = _words_of(content.get("title"), content.get("description"), vendor, *category)
    terms.extend(facet("category", c) for c in category)
    if vendor:
        terms.append(facet("vendor", vendor))
    terms.extend(_shipping(content))
    return _unique(terms)


def vendor_tokens(key: str, content: Mapping[str, Any]) -> list[str]:
    """Terms of a vendor profile: words of its name, id and bio, and its shipping facets."""
    terms = _words_of(content.get("name"), key, content.get("bio"))
    terms.append(facet("vendor", key))
    terms.extend(_shipping(content))
    return _unique(terms)


def version_tokens(kind: str, key: str, content: Mapping[str, Any]) -> list[str]:
    """What `_version_doc` stores as `tokens` for a version of `kind`."""
    if kind == "listing":
        return listing_tokens(content)
    return vendor_tokens(key, content)


def query_terms(text: str) -> list[str]:
    """The distinct words of a search, in order (what each result must contain)."""
    return _unique(words(text))


def _words_of(*texts: Any) -> list[str]:
    terms: list[str] = []
    for text in texts:
        if isinstance(text, str):
            terms.extend(words(text))
    return terms


def _shipping(content: Mapping[str, Any]) -> list[str]:
    terms = []
    if isinstance(content.get("ships_from"), str):
        terms.append(facet("from", content["ships_from"]))
    terms.extend(facet("to", c) for c in content.get("ships_to") or [] if isinstance(c, str))
    return terms


def _unique(terms: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(terms))
