"""Which entities each run observed, stored as one compact document per batch."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pymongo.errors import DuplicateKeyError

from pipelines.store.codec import sha256_text
from pipelines.store.schema import OBSERVATIONS

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pymongo.database import Database

    from pipelines.store.model import RunRef

logger = logging.getLogger(__name__)

# Keys per document: far below the 16 MB document limit even for long keys.
CHUNK = 20_000


def record_observed(db: Database, run: RunRef, kind: str, keys: Iterable[str]) -> None:
    """Store the batch's sorted keys under an id derived from them: a replay adds nothing.

    This is what lets an unchanged re-crawl write nothing per entity while still answering
    exactly which entities the run saw.
    """
    ordered = sorted(set(keys))
    for start in range(0, len(ordered), CHUNK):
        _insert_chunk(db, run, kind, ordered[start : start + CHUNK])


def _insert_chunk(db: Database, run: RunRef, kind: str, keys: list[str]) -> None:
    doc_id = f"{run.run_id}:{kind}:{sha256_text(*keys)[:32]}"
    try:
        db[OBSERVATIONS].insert_one(
            {
                "_id": doc_id,
                "run": run.run_id,
                "source": run.source,
                "seq": run.seq,
                "kind": kind,
                "keys": keys,
            }
        )
    except DuplicateKeyError:
        logger.debug("observation %s already stored (replay)", doc_id)


def observed_keys(db: Database, run_id: str, kind: str) -> set[str]:
    """Union of the keys a run observed for `kind`."""
    return set(observed_key_stream(db, run_id, kind))


def observed_key_stream(
    db: Database, run_id: str, kind: str, *, batch_size: int = 0
) -> Iterator[str]:
    """The keys of the run's observation lists as read (repeats possible): a reader in
    bounded memory asks for a few lists (up to 20,000 keys each) per reply."""
    query = {"run": run_id, "kind": kind}
    for doc in db[OBSERVATIONS].find(query, {"keys": 1}, batch_size=batch_size):
        yield from doc["keys"]
