"""One listing through time: its versions, and its price in USD in every run that saw it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.query.runs import READABLE, Run, source_runs
from pipelines.store.export import usd_value
from pipelines.store.queries import entity_history
from pipelines.store.rereads import entity_rereads, run_readers
from pipelines.store.schema import OBSERVATIONS, OPEN_SEQ

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)


def price_series(
    db: Database, source: str, key: str, *, parser: str | None = None
) -> dict[str, Any]:
    """A listing's versions, and one point per run that observed it: price and USD.

    USD is converted at the rates that run recorded (the market's own where it showed
    them), so the series moves with the exchange rate even where the listing's crypto
    price, and so its version, did not change. Each point names the rate and its source.
    A complete run observed every listing valid in it; other runs are checked against
    their observation records, so a partial run that missed the listing adds no point.
    A reparsed run's point uses its newest reading (or, with `parser`, only runs that
    parser read); each point names the parser that read it.
    """
    history = entity_history(db, source, "listing", key)
    if not history:
        return {"source": source, "key": key, "versions": [], "series": []}
    # Only the runs the versions span: the cost follows the listing's life, not the archive's.
    last = history[-1]["valid_to_seq"]  # None: still valid
    runs = source_runs(db, source, history[0]["valid_from_seq"], last)
    readers = run_readers(db, source, {r.run_id: r.parser_version for r in runs}, parser)
    rereads = {
        name: entity_rereads(db, source, "listing", key, name)
        for name in set(readers.values()) - {None}
        if name is not None
    }
    series = []
    for version in history:
        start, end = version["valid_from_seq"], version["valid_to_seq"] or OPEN_SEQ
        for run in runs:
            if not start <= run.seq < end:
                continue
            if run.run_id not in readers or run.status not in READABLE:
                continue
            if not _observed(db, run, key):
                continue
            reader = readers[run.run_id]
            content = _reread(rereads.get(reader or "", []), run.seq, version["content"])
            if content is not None:
                series.append(_point(run, version, content, reader or run.parser_version))
    return {"source": source, "key": key, "versions": history, "series": series}


def _reread(
    rereads: list[dict[str, Any]], seq: int, content: dict[str, Any]
) -> dict[str, Any] | None:
    """The listing's content in run `seq` by a reading: its reread there, else the crawl's."""
    for doc in rereads:
        if doc["valid_from_seq"] <= seq < doc["valid_to_seq"]:
            return doc["content"]
    return content


def _point(
    run: Run, version: dict[str, Any], content: dict[str, Any], parser: str
) -> dict[str, Any]:
    price = content.get("price") or {}
    amount, currency = price.get("amount"), str(price.get("currency") or "")
    usd = usd_value(amount, currency, run.rates, run.run_id) if amount is not None else None
    return {
        **run.header(),
        "version": version["version"],
        "parser": parser,
        "price": {"amount": amount, "currency": currency or None, "text": price.get("text")},
        "usd": usd,
    }


def _observed(db: Database, run: Run, key: str) -> bool:
    if run.status == "complete":
        return True  # a complete run delists what it did not see
    query = {"run": run.run_id, "kind": "listing", "keys": key}
    return db[OBSERVATIONS].find_one(query, {"_id": 1}) is not None
