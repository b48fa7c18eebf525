"""Entities as of a run: the versions valid in it, by equality lookups (valid_in_run.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.query.runs import READABLE, QueryError, resolve_run
from pipelines.store.displayed import displayed_prices
from pipelines.store.export import RunRates, run_content
from pipelines.store.observations import observed_keys
from pipelines.store.rereads import (
    UnknownReadingError,
    apply_overlay,
    overlay,
    reading_parser,
)
from pipelines.store.valid_in_run import versions_in_run

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from pymongo.database import Database

logger = logging.getLogger(__name__)


def valid_versions(
    db: Database,
    source: str,
    kind: str,
    seq: int,
    projection: dict[str, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every version valid in run `seq` (valid_from_seq <= seq < valid_to_seq), raw BSON,
    found by equality lookups that do not grow with the archive's age (valid_in_run.py);
    whole versions unless `projection` names fields."""
    return versions_in_run(db, source, kind, seq, projection)


def as_of(
    db: Database,
    source: str,
    *,
    kind: str = "listing",
    run: str | None = None,
    at: datetime | None = None,
    include_unobserved: bool = False,
    parser: str | None = None,
) -> dict[str, Any]:
    """The listings (or vendors) of a source as one run saw them, with USD for listings.

    `run` by id, or `at`: the last run started at or before that time; default the latest
    complete or partial run. Each entity carries the version valid then, its provenance
    and, for listings, `usd` at the rates that run recorded. By default only what the
    run observed (what `export --run` gives); `include_unobserved` adds entities still
    listed but not seen by a partial run, marked `observed: false`. Where the run was
    reparsed, the newest parser's reading answers unless `parser` names another (or
    `"crawl"`); the run header says which.
    """
    target = resolve_run(db, source, run=run, at=at)
    if target.status not in READABLE:
        logger.warning("run %s is %s: its content may still change", target.run_id, target.status)
    reader = _reader(db, target.run_id, parser)
    seen = observed_keys(db, target.run_id, kind)
    found: dict[str, dict[str, Any]] = {}
    for doc in versions_in_run(db, source, kind, target.seq, decimals=True):
        observed = doc["key"] in seen
        if observed or include_unobserved:
            found[doc["key"]] = {
                "key": doc["key"],
                "v": doc["v"],
                "first_seen_run": doc["first_seen_run"],
                "observed": observed,
                "content": doc["content"],
                "provenance": doc["provenance"],
            }
    if reader is not None:
        apply_overlay(found, overlay(db, source, kind, target.seq, reader))
    shown = displayed_prices(db, target.run_id, kind)  # per-run values and second prices
    entities = []
    rates = RunRates(target.rates, target.run_id)  # each currency's way to USD, found once
    for key in sorted(found):
        entity = found[key]
        content = run_content(entity["content"], shown.get(key), kind, rates, target.run_id)
        entities.append(
            {
                "key": key,
                "version": entity["v"],
                "first_seen_run": entity["first_seen_run"],
                "observed": entity.get("observed", True),
                "content": content,
                "provenance": entity["provenance"],
                **({"reread_fields": entity["reread_fields"]} if "reread_fields" in entity else {}),
            }
        )
    header = {**target.header(), "parser": reader or target.parser_version}
    return {"source": source, "kind": kind, "run": header, "entities": entities}


def _reader(db: Database, run_id: str, parser: str | None) -> str | None:
    try:
        return reading_parser(db, run_id, parser)
    except UnknownReadingError as exc:
        raise QueryError(str(exc)) from exc
