"""MongoDB's 16 MB document limit: lists capped, sizes checked before a write, not after.

A listing with 80,000 price tiers becomes an 18 MB record; sent in a bulk, the server's
rejection takes the whole batch with it. Such a record is set aside here, before the
write, with its size, so it becomes a problem on its page and the rest of the batch goes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import bson

from pipelines.store.codec import to_bson

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from crawler.items import PageItem
    from pipelines.store.model import EntityObservation

logger = logging.getLogger(__name__)

MAX_DOCUMENT = 16 * 1024 * 1024  # MongoDB's maxBsonObjectSize
# A version and a current document hold the content plus ids, provenance and bounds.
ENVELOPE = 64 * 1024
MAX_CONTENT = MAX_DOCUMENT - ENVELOPE
# Below this first estimate a record is certainly small: no exact encoding needed.
ESTIMATE_FLOOR = 1024 * 1024
_SCALAR = 16
_SAMPLE = 8  # list items looked at to estimate a whole list
DEFAULT_MAX_LIST_ITEMS = 500  # a source's pages.<kind>.max_list_items when it has no blueprint


def rough_size(value: Any) -> int:
    """A cheap estimate of a value's BSON size, from a sample of each list's items."""
    if isinstance(value, str | bytes):
        return len(value) + _SCALAR
    if isinstance(value, list | tuple):
        if not value:
            return _SCALAR
        sample = value[:_SAMPLE]
        per_item = sum(rough_size(v) for v in sample) / len(sample)
        return int(per_item * len(value)) + _SCALAR
    if isinstance(value, dict) or hasattr(value, "items"):
        return sum(len(str(k)) + rough_size(v) for k, v in value.items()) + _SCALAR
    return _SCALAR


def content_size(content: Mapping[str, Any]) -> int:
    """The content's BSON size: exact when the first estimate says it may be large."""
    estimate = rough_size(content)
    if estimate < ESTIMATE_FLOOR:
        return estimate
    return len(bson.encode(to_bson({"content": dict(content)})))


def split_oversized(
    batch: Sequence[EntityObservation],
) -> tuple[list[EntityObservation], list[tuple[EntityObservation, int]]]:
    """(observations that fit, [(observation, size in bytes)] that cannot be stored)."""
    fitting: list[EntityObservation] = []
    oversized: list[tuple[EntityObservation, int]] = []
    for obs in batch:
        size = content_size(obs.content)
        if size > MAX_CONTENT:
            oversized.append((obs, size))
        else:
            fitting.append(obs)
    return fitting, oversized


def too_large_reason(kind: str, key: str, size: int) -> str:
    return (
        f"{kind} {key} not stored: its record is {size / 1e6:.1f} MB, over MongoDB's "
        f"{MAX_DOCUMENT // (1024 * 1024)} MB document limit (cap its lists with "
        f"pages.{kind}.max_list_items)"
    )


def cap_lists(item: PageItem, limit: int) -> None:
    """Keep at most `limit` items of each list in a record (tiers, variants) and of the
    page's feedback; each cut is a problem on the page, so a hostile page cannot make a
    record MongoDB refuses.

    Extraction already read only the first `limit` rows of a blueprint's lists and counted
    the rest (`item.list_totals`); the problem gives that count. Lists it did not cut (a
    page object's, a `multiple` field's) are cut here.
    """
    where = f"pages.{item.state}.max_list_items"
    totals = item.list_totals
    for kind, key, content in item.records:
        for name, value in list(content.items()):
            if not isinstance(value, list | tuple):
                continue
            total = max(len(value), totals.get(name, 0))
            if total > limit:
                content[name] = list(value[:limit])
                item.problems.append(
                    f"{kind} {key}: {name} has {total} items; kept the first {limit} ({where})"
                )
    total = max(len(item.feedback), totals.get("feedback", 0))
    if total > limit:
        key = item.records[0][1] if item.records else item.url
        item.problems.append(
            f"feedback of {key} has {total} entries; kept the first {limit} ({where})"
        )
        item.feedback = item.feedback[:limit]
