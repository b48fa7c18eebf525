"""Unordered bulk writes that treat duplicate keys as "already stored" (replays)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pymongo.errors import BulkWriteError

if TYPE_CHECKING:
    from pymongo.collection import Collection

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000


def bulk_ignoring_duplicates(coll: Collection, ops: list[Any]) -> tuple[int, set[int]]:
    """Run an unordered bulk; return (matched count, indexes of ops that hit a duplicate key).

    Any other write error is raised: only duplicates mean "a replay already wrote this".
    """
    if not ops:
        return 0, set()
    try:
        result = coll.bulk_write(ops, ordered=False)
        return result.matched_count, set()
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return exc.details.get("nMatched", 0), {e["index"] for e in errors}
