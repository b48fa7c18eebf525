"""Search listings by words and filters: one equality lookup on the rarest term, then filters.

Words, vendor, category and shipping are all terms of the `tokens` array (see tokens.py),
so every search starts with an equality on the (source, tokens, valid_to_seq) index, on
SecantusDB and real MongoDB alike. Where the server has a text index (real MongoDB) the
words are looked up through `$text` instead; the same token filter then decides, so both
paths return the same listings. USD filters are applied last: USD depends on the run's
rates, so it cannot be indexed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipelines.query.runs import QueryError, Run, resolve_run
from pipelines.store.codec import from_bson
from pipelines.store.export import add_usd, usd_value
from pipelines.store.observations import observed_keys
from pipelines.store.schema import OPEN_SEQ, SOURCES, TEXT_INDEX, versions_collection
from pipelines.store.tokens import facet, query_terms

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

logger = logging.getLogger(__name__)

# No query here is hinted: on SecantusDB a hint walks the whole index (0.1 s for 400
# versions), while its planner alone finds the bounds (3 ms).
COUNT_CAP = 5000  # enough to tell a rare term from a common one
FIELDS = {"key": 1, "v": 1, "content": 1, "tokens": 1, "valid_from_seq": 1, "valid_to_seq": 1}


@dataclass(frozen=True)
class Search:
    """What a researcher asked for; every given criterion must hold."""

    text: str = ""
    source: str | None = None
    category: str | None = None
    vendor: str | None = None
    ships_from: str | None = None
    ships_to: str | None = None  # a listing shipping worldwide (`*`) ships there too
    min_usd: Decimal | None = None
    max_usd: Decimal | None = None
    max_usd_per_unit: Decimal | None = None
    run: str | None = None  # search as of this run instead of the current listings

    def required_terms(self) -> list[str]:
        terms = query_terms(self.text)
        for name, value in (
            ("category", self.category),
            ("vendor", self.vendor),
            ("from", self.ships_from),
        ):
            if value:
                terms.append(facet(name, value))
        return terms

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


def search(db: Database, query: Search) -> dict[str, Any]:
    """Listings matching `query` in one source or every source, ordered by source and key.

    Without `run`, among the listings listed now (USD at the rates of the source's latest
    complete or partial run); with `run`, among those the run observed, at its rates.
    """
    sources = [query.source] if query.source else _sources(db)
    results: list[dict[str, Any]] = []
    methods = set()
    for source in sources:
        try:
            run = resolve_run(db, source, run=query.run)
        except QueryError:
            if query.source:
                raise
            continue
        method, docs = _candidates(db, source, query, run)
        methods.add(method)
        results.extend(_matches(db, source, query, run, docs))
    results.sort(key=lambda r: (r["source"], r["key"]))
    return {
        "query": query.describe(),
        "method": "+".join(sorted(methods)) or "tokens",
        "count": len(results),
        "results": results,
    }


def _sources(db: Database) -> list[str]:
    return sorted(d["_id"] for d in db[SOURCES].find({}, {"_id": 1}))


def _validity(query: Search, run: Run) -> Any:
    return OPEN_SEQ if query.run is None else {"$gt": run.seq}


def _candidates(
    db: Database, source: str, query: Search, run: Run
) -> tuple[str, list[dict[str, Any]]]:
    """Versions that hold the rarest required term (or either ships-to term)."""
    coll = db[versions_collection("listing")]
    valid = _validity(query, run)
    base: dict[str, Any] = {"source": source, "valid_to_seq": valid}
    words = query_terms(query.text)
    if words and has_text_index(coll):
        found = coll.find({**base, "$text": {"$search": " ".join(words)}}, FIELDS)
        return "text", list(found)
    terms = query.required_terms()
    if terms:
        rarest = min(terms, key=lambda t: _count(coll, {**base, "tokens": t}))
        return "tokens", list(coll.find({**base, "tokens": rarest}, FIELDS))
    if query.ships_to:
        docs: dict[str, dict[str, Any]] = {}
        for term in (facet("to", query.ships_to), facet("to", "*")):
            for doc in coll.find({**base, "tokens": term}, FIELDS):
                docs[doc["_id"]] = doc
        return "tokens", list(docs.values())
    return "current", list(coll.find(base, FIELDS))


def _count(coll: Collection, query: dict[str, Any]) -> int:
    return coll.count_documents(query, limit=COUNT_CAP)


def has_text_index(coll: Collection) -> bool:
    """Does this server hold the listings' text index (real MongoDB; never SecantusDB)?"""
    return TEXT_INDEX in coll.index_information()


def _matches(
    db: Database, source: str, query: Search, run: Run, docs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    required = set(query.required_terms())
    ships_to = {facet("to", query.ships_to), facet("to", "*")} if query.ships_to else set()
    seen = observed_keys(db, run.run_id, "listing") if query.run is not None else None
    out = []
    for doc in docs:
        tokens = set(doc.get("tokens") or [])
        if not required <= tokens or (ships_to and not ships_to & tokens):
            continue
        if seen is not None and (doc["valid_from_seq"] > run.seq or doc["key"] not in seen):
            continue
        result = _result(source, run, doc)
        if _usd_ok(query, result):
            out.append(result)
    return out


def _result(source: str, run: Run, doc: dict[str, Any]) -> dict[str, Any]:
    content = add_usd(from_bson(doc["content"]), run.rates, run.run_id)
    per_unit = content.get("price_per_unit") or {}
    usd_per_unit = None
    if isinstance(per_unit.get("amount"), Decimal):
        currency = str(per_unit.get("currency", ""))
        value = usd_value(per_unit["amount"], currency, run.rates, run.run_id)
        if value is not None:
            usd_per_unit = {**value, "unit": per_unit.get("unit")}
    return {
        "source": source,
        "key": doc["key"],
        "version": doc["v"],
        "title": content.get("title"),
        "vendor": content.get("vendor"),
        "category_path": content.get("category_path"),
        "ships_from": content.get("ships_from"),
        "ships_to": content.get("ships_to"),
        "price": content.get("price"),
        "usd": content.get("usd"),
        "price_per_unit": content.get("price_per_unit"),
        "usd_per_unit": usd_per_unit,
        "rates_run": run.run_id,
    }


def _usd_ok(query: Search, result: dict[str, Any]) -> bool:
    usd = (result["usd"] or {}).get("amount")
    if query.min_usd is not None and (usd is None or usd < query.min_usd):
        return False
    if query.max_usd is not None and (usd is None or usd > query.max_usd):
        return False
    per_unit = (result["usd_per_unit"] or {}).get("amount")
    return query.max_usd_per_unit is None or (
        per_unit is not None and per_unit <= query.max_usd_per_unit
    )
