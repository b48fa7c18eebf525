"""Yes/no facts a listing shows in words: in stock, escrow, finalize early (FE)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pipelines.normalise.errors import FlagError

if TYPE_CHECKING:
    from collections.abc import Mapping


# What markets write, lower-cased, English, German, French and Russian. Negative phrases
# come first in matching (longest first), so "not available" is never read as "available".
FLAG_WORDS: dict[str, bool] = {
    **dict.fromkeys(
        ["yes", "true", "enabled", "on", "allowed", "available", "in stock", "✓", "✔",
         "ja", "verfügbar", "auf lager", "lieferbar", "oui", "disponible", "en stock",
         "да", "в наличии", "есть"],
        True,
    ),
    **dict.fromkeys(
        ["no", "false", "disabled", "off", "not allowed", "unavailable", "not available",
         "out of stock", "sold out", "✗", "✘", "nein", "ausverkauft", "nicht verfügbar",
         "nicht auf lager", "non", "épuisé", "rupture de stock", "indisponible", "нет",
         "нет в наличии", "распродано"],
        False,
    ),
}  # fmt: skip


def parse_flag(text: str, extra: Mapping[str, bool] | None = None) -> bool:
    """Read a yes/no fact from its words; `extra` holds a source's own (lower-cased).

    >>> parse_flag("In stock"), parse_flag("Sold out!"), parse_flag("FE: not allowed")
    (True, False, False)
    """
    words = {**FLAG_WORDS, **(extra or {})}
    folded = " ".join(text.lower().split())
    for word in sorted(words, key=len, reverse=True):
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", folded):
            return words[word]
    raise FlagError(text, "neither yes nor no")
