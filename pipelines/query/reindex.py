"""Backfill what older versions lack: search terms (or an older tokeniser's) and run spans."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pymongo import UpdateOne

from pipelines.store.codec import from_bson
from pipelines.store.schema import KINDS, ensure_indexes, versions_collection
from pipelines.store.tokens import TOKENS_VERSION, version_tokens
from pipelines.store.valid_in_run import backfill_spans, spans_complete

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)

BATCH = 1000


def reindex(db: Database, source: str) -> dict[str, int]:
    """Give every version of `source` the tokens of today's tokeniser; return how many
    versions of each kind were rewritten.

    Explicit (`darkarchive reindex <source>`), not done at start: it reads every version
    of the source once, which a crawl should not pay for. Tokens are not content, so no
    version is created and no past run's answer changes except that search finds it.
    Idempotent: versions already at TOKENS_VERSION are skipped. Closed versions written
    before they carried the run buckets they span get them too (once per source), so the
    versions valid in a run are found by equality lookups (pipelines/store/valid_in_run.py).
    """
    ensure_indexes(db)
    done: dict[str, int] = {}
    for kind in KINDS:
        coll = db[versions_collection(kind)]
        ops: list[UpdateOne] = []
        done[kind] = 0
        cursor = coll.find(
            {"source": source}, {"key": 1, "content": 1, "tokens_v": 1}, batch_size=BATCH
        )
        for doc in cursor:
            if doc.get("tokens_v") == TOKENS_VERSION:
                continue
            tokens = version_tokens(kind, doc["key"], from_bson(doc["content"]))
            update = {"$set": {"tokens": tokens, "tokens_v": TOKENS_VERSION}}
            ops.append(UpdateOne({"_id": doc["_id"]}, update))
            if len(ops) >= BATCH:
                done[kind] += coll.bulk_write(ops, ordered=False).modified_count
                ops = []
        if ops:
            done[kind] += coll.bulk_write(ops, ordered=False).modified_count
        logger.info("reindexed %d %s versions of %s", done[kind], kind, source)
    if not spans_complete(db, source):
        backfill_spans(db, source)
    return done
