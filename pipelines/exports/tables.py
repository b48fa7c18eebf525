"""Rows of the published tables, for one run or a panel of runs, read through the store.

Everything comes from the same reconstruction as `darkarchive export` (the entities a
run observed, with the content they had then; feedback as that run knew it), so a table
of run R is the same whatever later runs added.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipelines.exports.schema import FREE_TEXT, HANDLES, TABLES
from pipelines.store.codec import from_bson
from pipelines.store.export import RunRates, jsonable, run_content
from pipelines.store.queries import feedback
from pipelines.store.rereads import reading_parser
from pipelines.store.run_entities import entities_in_run
from pipelines.store.run_pages import run_pages
from pipelines.store.schema import versions_collection

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from pymongo.database import Database

Row = dict[str, Any]


class Options:
    """What a publication leaves out: free text, and handles (replaced by keyed HMACs)."""

    def __init__(self, *, pseudonymise_key: str | None = None, no_text: bool = False) -> None:
        self.key = pseudonymise_key.encode() if pseudonymise_key else None
        self.no_text = no_text

    def pseudonym(self, handle: str) -> str:
        """Stable across exports with the same key; not reversible without it."""
        assert self.key is not None
        return hmac.new(self.key, handle.encode(), hashlib.sha256).hexdigest()[:20]

    def apply(self, table: str, row: Row) -> Row:
        if self.no_text:
            for column in FREE_TEXT.get(table, ()):
                row[column] = None
        if self.key is not None:
            for column in HANDLES.get(table, ()):
                if row.get(column):
                    row[column] = self.pseudonym(str(row[column]))
            for column in ("provenance_url", "url"):  # URLs can name a vendor's shop
                if column in row:
                    row[column] = None
        return {name: row.get(name) for name, _ in TABLES[table]}


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _provenance(entity: Mapping[str, Any]) -> Row:
    prov = entity.get("provenance") or {}
    return {
        "provenance_url": prov.get("url"),
        "provenance_page_sha256": prov.get("page_sha256"),
        "provenance_parser_version": prov.get("parser_version"),
        "provenance_fetched_at": prov.get("fetched_at"),
    }


def _entity(run: Mapping[str, Any], entity: Mapping[str, Any]) -> Row:
    """The columns every entity row starts with: which run, which entity, which version."""
    return {
        "run": run["_id"],
        "source": run["source"],
        "key": entity["key"],
        "version": entity["v"],
        "first_seen_run": entity["first_seen_run"],
        **_provenance(entity),
    }


def _dated(name: str, value: Any) -> Row:
    """`<name>_earliest`, `_latest`, `_text` of a date interval (all null when absent)."""
    value = value or {}
    return {f"{name}_{part}": value.get(part) for part in ("earliest", "latest", "text")}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(jsonable(value), sort_keys=True)


def _joined(value: Any, sep: str) -> str | None:
    if isinstance(value, list):
        return sep.join(str(v) for v in value)
    return None if value is None else str(value)


def run_row(run: Mapping[str, Any]) -> Row:
    counts = run.get("counts") or {}
    listing, vendor = counts.get("listing") or {}, counts.get("vendor") or {}
    return {
        "run": run["_id"],
        "source": run["source"],
        "seq": run["seq"],
        "status": run["status"],
        "complete": run["status"] == "complete",
        "parser_version": run.get("parser_version"),
        "started_at": run.get("started_at"),
        "finished_at": run.get("finished_at"),
        "pages": counts.get("pages"),
        "listings_expected": counts.get("expected_listings"),
        "listings_parsed": counts.get("listings_parsed"),
        "listings_observed": listing.get("observed"),
        "listings_new": listing.get("new"),
        "listings_changed": listing.get("changed"),
        "listings_delisted": listing.get("delisted"),
        "vendors_observed": vendor.get("observed"),
        "feedback_new": counts.get("feedback_new"),
        "reasons": "; ".join(run.get("reasons") or []),
        "rates_json": json.dumps(jsonable(run.get("rates") or {}), sort_keys=True),
    }


def listing_rows(db: Database, run: Mapping[str, Any], parser: str | None = None) -> Iterator[Row]:
    rates = RunRates(run.get("rates") or {}, run["_id"])  # each currency's way to USD, once
    reader = reading_parser(db, run["_id"], parser)
    for entity, shown in entities_in_run(db, run, "listing", reader=reader, shown=True):
        displayed = shown or {}
        content = run_content(entity["content"], displayed, "listing", rates, run["_id"])
        price, usd = content.get("price") or {}, content.get("usd") or {}
        hint = displayed.get("price_hint") or {}
        quantity, ppu = content.get("quantity") or {}, content.get("price_per_unit") or {}
        yield {
            **_entity(run, entity),
            "title": content.get("title"),
            "category": _joined(content.get("category_path"), " > "),
            "description": content.get("description"),
            "vendor": content.get("vendor"),
            "price_amount": _decimal(price.get("amount")),
            "price_currency": price.get("currency"),
            "price_text": price.get("text"),
            "usd_amount": _decimal(usd.get("amount")),
            "usd_rate": _decimal(usd.get("rate")),
            "usd_rate_source": usd.get("rate_source"),
            "usd_rate_path": usd.get("rate_path"),
            "usd_rate_provenance": usd.get("rate_provenance"),
            "price_hint_amount": _decimal(hint.get("amount")),
            "price_hint_currency": hint.get("currency"),
            "price_hint_text": hint.get("text"),
            "quantity_amount": _decimal(quantity.get("amount")),
            "quantity_unit": quantity.get("unit"),
            "quantity_count": quantity.get("count"),
            "quantity_text": quantity.get("text"),
            "price_per_unit_amount": _decimal(ppu.get("amount")),
            "price_per_unit_currency": ppu.get("currency"),
            "price_per_unit_unit": ppu.get("unit"),
            "tiers_json": json.dumps(jsonable(content.get("tiers") or []), sort_keys=True),
            "ships_from": content.get("ships_from"),
            "ships_from_text": content.get("ships_from_text"),
            "ships_to": _joined(content.get("ships_to"), ";"),
            "ships_to_text": content.get("ships_to_text"),
            **_dated("listed", content.get("listed")),
            **_dated("updated", content.get("updated")),
            "in_stock": content.get("in_stock"),
            "availability_text": content.get("availability_text"),
            "sales": content.get("sales"),
            "sales_text": content.get("sales_text"),
            "escrow": content.get("escrow"),
            "escrow_text": content.get("escrow_text"),
            "finalize_early": content.get("finalize_early"),
            "finalize_early_text": content.get("finalize_early_text"),
            "shipping_options_json": _json(content.get("shipping_options")),
            "extra_json": _json(content.get("extra")),
        }


def vendor_rows(db: Database, run: Mapping[str, Any], parser: str | None = None) -> Iterator[Row]:
    reader = reading_parser(db, run["_id"], parser)
    for entity, shown in entities_in_run(db, run, "vendor", reader=reader, shown=True):
        content = run_content(entity["content"], shown, "vendor", {}, run["_id"])
        rating, joined = content.get("rating") or {}, content.get("joined") or {}
        yield {
            **_entity(run, entity),
            "name": content.get("name"),
            "rating_value": _decimal(rating.get("value")),
            "rating_raw": _decimal(rating.get("raw")),
            "rating_scale": _decimal(rating.get("scale")),
            "rating_text": rating.get("text"),
            "feedback_count": content.get("feedback_count"),
            "joined_earliest": joined.get("earliest"),
            "joined_latest": joined.get("latest"),
            "joined_text": joined.get("text"),
            "ships_from": content.get("ships_from"),
            "ships_to": _joined(content.get("ships_to"), ";"),
            "bio": content.get("bio"),
            "pgp_fingerprint": content.get("pgp_fingerprint"),
            "level": (content.get("level") or {}).get("value"),
            "level_text": (content.get("level") or {}).get("text"),
            "badges": _joined(content.get("badges"), ";"),
            "sales": content.get("sales"),
            "sales_text": content.get("sales_text"),
            "extra_json": _json(content.get("extra")),
        }


def feedback_rows(
    db: Database, run: Mapping[str, Any], runs_by_seq: Mapping[int, Mapping[str, Any]]
) -> Iterator[Row]:
    """Feedback as `run` knew it, each with the listing's vendor and price in the run that
    first saw it: the price valid when the review was left, as near as the archive knows."""
    entries = feedback(db, run["source"], run_id=run["_id"])
    listings = _listing_versions(db, run["source"], {e["listing_key"] for e in entries})
    converters: dict[int, RunRates] = {}  # by seq: each run's rates read once
    for entry in entries:
        seq = entry["first_seq"]
        version = next(
            (
                v
                for v in listings.get(entry["listing_key"], ())
                if v["valid_from_seq"] <= seq < v["valid_to_seq"]
            ),
            None,
        )
        content = version["content"] if version else {}
        price = content.get("price") or {}
        amount = _decimal(price.get("amount"))
        first = runs_by_seq.get(seq) or {}
        if first and seq not in converters:
            converters[seq] = RunRates(first.get("rates") or {}, first["_id"])
        usd = (
            converters[seq].usd(amount, str(price.get("currency", "")))
            if amount is not None and first
            else None
        )
        scale, raw = _decimal(entry.get("rating_scale")), _decimal(entry.get("rating"))
        yield {
            "run": run["_id"],
            "source": run["source"],
            "id": entry["_id"],
            "listing_key": entry["listing_key"],
            "vendor": content.get("vendor"),
            "price_amount": amount,
            "price_currency": price.get("currency"),
            "usd_amount": usd["amount"] if usd else None,
            "buyer": entry.get("buyer"),
            "rating_value": raw / scale if raw is not None and scale else None,
            "rating_raw": raw,
            "rating_scale": scale,
            "rating_text": entry.get("rating_text"),
            "text": entry.get("text"),
            "date_earliest": entry.get("date_earliest"),
            "date_latest": entry.get("date_latest"),
            "date_text": entry.get("date_text"),
            "first_run": entry.get("first_run"),
            "narrowed_by": entry.get("narrowed_by"),
            **_provenance(entry),
        }


def _listing_versions(db: Database, source: str, keys: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Every version of these listings, by key: `$in` batches on the (source, key) index."""
    found: dict[str, list[dict[str, Any]]] = {}
    ordered = sorted(keys)
    projection = {"key": 1, "valid_from_seq": 1, "valid_to_seq": 1, "content": 1}
    for start in range(0, len(ordered), 500):
        batch = ordered[start : start + 500]
        query = {"source": source, "key": {"$in": batch}}
        for doc in db[versions_collection("listing")].find(query, projection):
            found.setdefault(doc["key"], []).append(from_bson(doc))
    return found


def page_rows(db: Database, run: Mapping[str, Any]) -> Iterator[Row]:
    fields = ("url", "status", "state", "kind", "fetched_at", "sha256", "size", "error")
    for page in run_pages(db, run["_id"], fields):
        yield {"run": run["_id"], "source": run["source"], **{f: page.get(f) for f in fields}}
