"""Entities as of a run: the versions valid in it, by equality lookups (valid_in_run.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.query.runs import READABLE, QueryError, resolve_run
from pipelines.store.export import RunRates, run_content
from pipelines.store.keyed_merge import CHUNK_BYTES
from pipelines.store.rereads import UnknownReadingError, reading_parser
from pipelines.store.run_entities import entities_in_run
from pipelines.store.valid_in_run import versions_in_run

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from pymongo.database import Database

    from pipelines.query.runs import Run

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
    `"crawl"`); the run header says which. `as_of_stream` gives the same entities one
    at a time, in bounded memory.
    """
    header, entities = as_of_stream(
        db, source, kind=kind, run=run, at=at, include_unobserved=include_unobserved, parser=parser
    )
    return {"source": source, "kind": kind, "run": header, "entities": list(entities)}


def as_of_stream(
    db: Database,
    source: str,
    *,
    kind: str = "listing",
    run: str | None = None,
    at: datetime | None = None,
    include_unobserved: bool = False,
    parser: str | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """`as_of`'s run header, and its entities by key as they are read: the run's versions,
    observations, rereads and displayed values are joined by key over chunks sorted on
    disk (run_entities.py), at most `chunk_bytes` of them in memory, so a market of a
    million listings is never held whole. The run is resolved (or refused, QueryError)
    before this returns."""
    target = resolve_run(db, source, run=run, at=at)
    if target.status not in READABLE:
        logger.warning("run %s is %s: its content may still change", target.run_id, target.status)
    reader = _reader(db, target.run_id, parser)
    header = {**target.header(), "parser": reader or target.parser_version}
    run_doc = {"_id": target.run_id, "source": target.source, "seq": target.seq}
    joined = entities_in_run(
        db,
        run_doc,
        kind,
        reader=reader,
        shown=True,
        unobserved=include_unobserved,
        chunk_bytes=chunk_bytes,
    )
    return header, _entities(joined, target, kind)


def _entities(
    joined: Iterator[tuple[dict[str, Any], dict[str, Any] | None]], target: Run, kind: str
) -> Iterator[dict[str, Any]]:
    rates = RunRates(target.rates, target.run_id)  # each currency's way to USD, found once
    for entity, displayed in joined:
        yield {
            "key": entity["key"],
            "version": entity["v"],
            "first_seen_run": entity["first_seen_run"],
            "observed": entity.get("observed", True),
            "content": run_content(entity["content"], displayed, kind, rates, target.run_id),
            "provenance": entity["provenance"],
            **({"reread_fields": entity["reread_fields"]} if "reread_fields" in entity else {}),
        }


def _reader(db: Database, run_id: str, parser: str | None) -> str | None:
    try:
        return reading_parser(db, run_id, parser)
    except UnknownReadingError as exc:
        raise QueryError(str(exc)) from exc
