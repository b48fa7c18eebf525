"""What a run displayed beside an entity's content: second prices and per-run values.

"$150.00 ≈ 0.0021 BTC" moves with the rate every day; kept in the versioned content it
would make a new version of every listing every day. It is kept on the run's page record
instead (`displayed`, written by pipelines/store/pages.py), which a run has anyway, and
read back here per run for exports and USD conversion. Counters and relative dates
(`PER_RUN` in pipelines/normalise_pipeline.py) travel the same way, as `value` entries.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.store.codec import from_bson
from pipelines.store.run_pages import run_page, run_pages

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from pymongo.database import Database

logger = logging.getLogger(__name__)

# Entries of what an entity's pages displayed (`add_shown`) that are not content fields:
# the page, the second price.
NOT_CONTENT = frozenset({"url", "price_hint"})


def displayed_entries(
    db: Database, run_id: str, kind: str
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """`(key, page url, entry)` of each `kind` entry the run's pages displayed, pages by URL.

    One indexed scan of the run's pages that hold any (`run` is the index's equality key).
    An entity shown on several pages has its first page's URL; a later entry for the same
    field replaces an earlier one (`add_shown` in this order).
    """
    for page in run_pages(db, run_id, ("url", "displayed"), having="displayed"):
        for entry in from_bson(page.get("displayed") or []):
            if entry.get("kind") == kind and entry.get("key"):
                yield str(entry["key"]), page["url"], entry


def add_shown(shown: dict[str, Any], entry: Mapping[str, Any]) -> None:
    """Fold one displayed entry into what is shown beside its entity (a dict that starts as
    `{"url": the first page's URL}`; run_entities.py folds them by key)."""
    if "value" in entry:  # a per-run value (pipelines/normalise_pipeline.py PER_RUN)
        shown[str(entry["field"])] = entry["value"]
        return
    shown[str(entry.get("field") or "price_hint")] = {
        name: entry.get(name) for name in ("amount", "currency", "text", "error", "of")
    }


def per_run_values(displayed: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values a run showed that are kept outside versions (counters, relative dates),
    to merge into the entity's content for that run."""
    return {k: v for k, v in (displayed or {}).items() if k not in NOT_CONTENT}


def shown_with(db: Database, version: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The per-run values shown with a version when it was first seen (its page in its
    first run: one lookup on the (run, url) index), for views of versions such as a
    vendor's profile history."""
    provenance = version.get("provenance") or {}
    run, url = version.get("valid_from_run"), provenance.get("url")
    if not run or not url:
        return {}
    page = run_page(db, run, url, ("displayed",)) or {}
    by_entity = per_run_by_entity(from_bson(page.get("displayed") or []))
    return by_entity.get((kind, str(version.get("key"))), {})


def per_run_by_entity(
    entries: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], dict[str, Any]]:
    """The per-run values among a page's `displayed` entries, by (kind, key)."""
    values: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        if "value" in entry:
            values.setdefault((entry["kind"], entry["key"]), {})[entry["field"]] = entry["value"]
    return values
