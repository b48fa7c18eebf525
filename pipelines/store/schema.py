"""Collection names, the validity sentinel and the indexes every hot query relies on."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pymongo import ASCENDING, TEXT, IndexModel
from pymongo.errors import OperationFailure

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)

Kind = Literal["listing", "vendor"]
KINDS: tuple[Kind, ...] = ("listing", "vendor")

SOURCES = "sources"
RUNS = "runs"
PAGES = "pages"
BODIES = "bodies"
BODY_HEADS = "body_heads"  # per source and URL: its newest body (pipelines/store/bodies.py)
OBSERVATIONS = "observations"
FEEDBACK = "feedback"
RUN_EVENTS = "run_events"
LEASES = "leases"  # one per source: who may crawl it now (pipelines/store/leases.py)

# Open versions end at this seq (and date) instead of null, so "as of run R" is one range.
OPEN_SEQ = 2**62
OPEN_DATE = datetime(9999, 12, 31, tzinfo=UTC)


def current_collection(kind: str) -> str:
    """Collection holding the current state of each entity of `kind` (`listings`, `vendors`)."""
    _check_kind(kind)
    return f"{kind}s"


def versions_collection(kind: str) -> str:
    """Collection holding every distinct content of each entity of `kind`."""
    _check_kind(kind)
    return f"{kind}_versions"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown entity kind {kind!r}; expected one of {KINDS}")


def _ix(*keys: str, unique: bool = False) -> IndexModel:
    return IndexModel([(k, ASCENDING) for k in keys], unique=unique)


# Every index starts with an equality key (source or run): the server we test on scans
# whole collections otherwise (see notes/mongodb-store.md).
INDEXES: dict[str, list[IndexModel]] = {
    RUNS: [_ix("source", "seq", unique=True), _ix("source", "status", "seq")],
    PAGES: [_ix("source", "fetched_at"), _ix("run", "url")],
    OBSERVATIONS: [_ix("run", "kind")],
    FEEDBACK: [
        _ix("source", "listing_key"),
        _ix("source", "first_seq"),
        _ix("source", "date_earliest"),  # sales between two dates (pipelines/query/sales.py)
    ],
    RUN_EVENTS: [_ix("run", "kind")],
    BODY_HEADS: [_ix("source")],
}
for _kind in KINDS:
    INDEXES[current_collection(_kind)] = [_ix("source", "status")]
    INDEXES[versions_collection(_kind)] = [
        _ix("source", "key", "v"),
        _ix("source", "valid_to_seq", "valid_from_seq"),
        _ix("source", "valid_from_run", "v"),
        _ix("source", "valid_to_run"),
        # As of an early run, and what started between two runs (pipelines/query/). Two
        # keys, not three: SecantusDB reads `$lte` on a middle key of an index as `$lt`.
        _ix("source", "valid_from_seq"),
        # Search: one multikey equality on a word or `facet=value` term, current or as of.
        _ix("source", "tokens", "valid_to_seq"),
        # Versions valid in a run: closed ones by the run buckets they span (multikey),
        # open ones on (source, valid_to_seq, valid_from_seq); see valid_in_run.py.
        _ix("source", "spans", "valid_to_seq"),
    ]

# Where the server has text indexes (real MongoDB), word search uses this one; SecantusDB
# refuses it (code 67) and search falls back to `tokens` alone.
TEXT_INDEX = "listing_text"
TEXT_INDEX_KEYS: list[tuple[str, int | str]] = [
    ("source", ASCENDING),
    ("content.title", TEXT),
    ("content.description", TEXT),
    ("content.category_path", TEXT),
    ("content.vendor", TEXT),
]


def ensure_indexes(db: Database) -> None:
    """Create the archive's indexes; idempotent, safe to call at every start."""
    for name, models in INDEXES.items():
        db[name].create_indexes(models)
    ensure_text_index(db)
    logger.debug("indexes ensured on %s", db.name)


def ensure_text_index(db: Database) -> bool:
    """Create the listings' text index where the server has text indexes; say whether it did."""
    try:
        db[versions_collection("listing")].create_index(
            TEXT_INDEX_KEYS, name=TEXT_INDEX, default_language="none"
        )
    except OperationFailure as exc:
        logger.debug("no text index on this server (code %s): %s", exc.code, exc)
        return False
    return True
