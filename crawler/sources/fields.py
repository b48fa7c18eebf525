"""The field names the record builder reads, per page kind: what a source file may extract.

A field under `pages.<kind>.fields` (or a list under `pages.<kind>.lists`) that no stage
reads is a typo: a misspelled `ship_from` would otherwise be extracted, dropped, and leave
ships-from empty on every listing of a `complete` run. `pipelines/entities.py` and
`pipelines/normalise_pipeline.py` read exactly these names; a new field goes in both places.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

#: `pages.<kind>.fields`: single values (or `multiple: true` lists of strings)
FIELDS: Mapping[str, frozenset[str]] = {
    # what the market says it holds; `title` only counts towards field coverage
    "index": frozenset({"title", "listing_count", "vendor_count", "listing_total", "vendor_total"}),
    "listing": frozenset(
        {
            "listing_id",
            "title",
            "category_path",
            "description",
            "vendor_id",
            "price",
            # a second price shown beside it ("≈ 0.0021 BTC"): kept per run, not versioned
            "price_hint",
            "quantity",
            "ships_from",
            "ships_to",
            # optional facts real markets show; a record has them only if the source reads them
            "listed",
            "updated",
            "availability",
            "sales",
            "escrow",
            "finalize_early",
        }
    ),
    "vendor": frozenset(
        {
            "vendor_id",
            "name",
            "rating",
            "feedback_count",
            "joined",
            "ships_from",
            "ships_to",
            "bio",
            "pgp_key",
            "level",
            "badges",
            "sales",
        }
    ),
}

#: `pages.<kind>.lists`: repeated blocks, with the fields each item carries
LISTS: Mapping[str, Mapping[str, frozenset[str]]] = {
    "index": {},
    "listing": {
        "tiers": frozenset({"quantity", "price"}),
        "feedback": frozenset({"rating", "buyer", "date", "text"}),
        "shipping_options": frozenset({"name", "price"}),
    },
    "vendor": {},
}


def unknown_name(name: str, valid: frozenset[str] | Mapping[str, object], what: str) -> str:
    """The problem with `name`, with the closest valid one (difflib) or the whole list."""
    names = sorted(valid)
    if not names:
        return f"unknown {what} {name!r}: this page kind has none"
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {what} {name!r}; {hint}expected one of {names}"


def unknown_names(
    kind: str, fields: Mapping[str, object], lists: Mapping[str, Mapping[str, object]]
) -> list[tuple[tuple[str, ...], str]]:
    """Each name a `kind` page's `fields` and `lists` give that nothing reads, with its key."""
    problems: list[tuple[tuple[str, ...], str]] = []
    known_lists = LISTS.get(kind, {})
    for name in fields:
        if name in FIELDS.get(kind, frozenset()):
            continue
        if name in known_lists:
            problem = f"{name!r} is a list of blocks: give it under pages.{kind}.lists"
        else:
            problem = unknown_name(name, FIELDS.get(kind, frozenset()), f"{kind} page field")
        problems.append((("fields", name), problem))
    for list_name, item_fields in lists.items():
        if list_name not in known_lists:
            problem = unknown_name(list_name, known_lists, f"{kind} page list")
            problems.append((("lists", list_name), problem))
            continue
        for name in item_fields:
            if name not in known_lists[list_name]:
                problem = unknown_name(name, known_lists[list_name], f"{list_name} field")
                problems.append((("lists", list_name, "fields", name), problem))
    return problems
