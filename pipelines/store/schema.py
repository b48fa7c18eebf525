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
PAGE_PACKS = "page_packs"  # pages that changed only in their noise (pipelines/store/page_packs.py)
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


def _ix(name: str, *keys: str, unique: bool = False) -> IndexModel:
    """An ascending index under a short name of our own.

    SecantusDB stores the index's name in every entry's key (uncompressed): the default
    name `source_1_tokens_1_valid_to_seq_1` cost 33 bytes per entry, more than the entry's
    own key, and made the search index the largest file of the data folder.
    """
    return IndexModel([(k, ASCENDING) for k in keys], unique=unique, name=name)


# Every index starts with an equality key (source or run): the server we test on scans
# whole collections otherwise (see notes/mongodb-store.md).
INDEXES: dict[str, list[IndexModel]] = {
    RUNS: [_ix("seq", "source", "seq", unique=True), _ix("status", "source", "status", "seq")],
    # A run's pages, by URL (replay, reparse, export, page evidence). Nothing reads pages
    # by date: the (source, fetched_at) index of earlier versions is dropped (RETIRED).
    PAGES: [_ix("run_url", "run", "url")],
    # A run's packed pages, and a packed body by the first bytes of its SHA-256 (multikey).
    PAGE_PACKS: [_ix("run", "run"), _ix("keys", "keys")],
    OBSERVATIONS: [_ix("run_kind", "run", "kind")],
    FEEDBACK: [
        _ix("listing", "source", "listing_key"),
        _ix("first_seq", "source", "first_seq"),
        _ix(
            "date", "source", "date_earliest"
        ),  # sales between two dates (pipelines/query/sales.py)
    ],
    RUN_EVENTS: [_ix("run_kind", "run", "kind")],
    BODY_HEADS: [_ix("source", "source")],
}
for _kind in KINDS:
    INDEXES[current_collection(_kind)] = [_ix("status", "source", "status")]
    INDEXES[versions_collection(_kind)] = [
        _ix("key_v", "source", "key", "v"),
        _ix("to_from", "source", "valid_to_seq", "valid_from_seq"),
        _ix("from_run", "source", "valid_from_run", "v"),
        _ix("to_run", "source", "valid_to_run"),
        # As of an early run, and what started between two runs (pipelines/query/). Two
        # keys, not three: SecantusDB reads `$lte` on a middle key of an index as `$lt`.
        _ix("from_seq", "source", "valid_from_seq"),
        # Search: one multikey equality on a word or `facet=value` term, current or as of.
        _ix("tokens", "source", "tokens", "valid_to_seq"),
        # Versions valid in a run: closed ones by the run buckets they span (multikey),
        # open ones on (source, valid_to_seq, valid_from_seq); see valid_in_run.py.
        _ix("spans", "source", "spans", "valid_to_seq"),
    ]

# Indexes earlier versions created and nothing reads any more: dropped where found.
RETIRED: dict[str, list[str]] = {PAGES: ["source_1_fetched_at_1"]}

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
        _rename_or_drop(db, name, models)
        db[name].create_indexes(models)
    ensure_text_index(db)
    logger.debug("indexes ensured on %s", db.name)


def _rename_or_drop(db: Database, collection: str, models: list[IndexModel]) -> None:
    """Drop the retired indexes, and those with a wanted key under another name (the
    server's default names of earlier versions), so `create_indexes` builds them anew
    under the short name (once per archive; a crawl's start pays it, with a log line)."""
    wanted = {tuple(m.document["key"].items()): m.document["name"] for m in models}
    retired = set(RETIRED.get(collection, ()))
    for index in db[collection].list_indexes():
        name, key = index["name"], tuple(index["key"].items())
        if name in retired or (key in wanted and wanted[key] != name):
            logger.info("dropping index %s of %s (%s)", name, collection,
                        "retired" if name in retired else f"renamed {wanted[key]}")  # fmt: skip
            db[collection].drop_index(name)


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
