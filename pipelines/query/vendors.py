"""One vendor through time: its listings with their lifetimes, and its feedback by month."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from pipelines.query.sales import midpoint
from pipelines.store.codec import from_bson
from pipelines.store.displayed import shown_with
from pipelines.store.queries import entity_history
from pipelines.store.schema import FEEDBACK, OPEN_SEQ, versions_collection
from pipelines.store.tokens import facet

if TYPE_CHECKING:
    from pymongo.database import Database

logger = logging.getLogger(__name__)

FIELDS = {"key": 1, "v": 1, "content": 1, "valid_from_run": 1, "valid_to_run": 1}
FIELDS |= {"valid_to_seq": 1, "end": 1}


def vendor_activity(db: Database, source: str, vendor: str) -> dict[str, Any]:
    """A vendor's profile versions, every listing it ever had (first and last run, still
    listed or not, prices per version) and its listings' feedback counted per month.

    Listings are found through the `vendor=` term of the tokens index, feedback through
    (source, listing_key): one indexed read per listing, never a scan.
    """
    cursor = db[versions_collection("listing")].find(
        {"source": source, "tokens": facet("vendor", vendor)}, FIELDS
    )
    listings: dict[str, dict[str, Any]] = {}
    for doc in sorted(cursor, key=lambda d: (d["key"], d["v"])):
        content = from_bson(doc["content"])
        if content.get("vendor") != vendor:
            continue  # the term is folded; the id is not
        entry = listings.setdefault(
            doc["key"], {"key": doc["key"], "first_run": doc["valid_from_run"], "versions": []}
        )
        entry["title"] = content.get("title")
        entry["listed"] = doc["valid_to_seq"] == OPEN_SEQ
        entry["last_run"] = doc.get("valid_to_run")
        entry["versions"].append(
            {"version": doc["v"], "from_run": doc["valid_from_run"], "price": content.get("price")}
        )
    months: Counter[str] = Counter()
    for key, entry in listings.items():
        entries = list(
            db[FEEDBACK].find(
                {"source": source, "listing_key": key}, {"date_earliest": 1, "date_latest": 1}
            )
        )
        entry["feedback"] = len(entries)
        months.update(f"{midpoint(e):%Y-%m}" for e in entries)
    profile = [
        {
            "version": v["version"],
            "valid_from_run": v["valid_from_run"],
            "valid_to_run": v["valid_to_run"],
            "name": v["content"].get("name"),
            "rating": v["content"].get("rating"),
            # kept per run since counters left versions; older archives have it in content
            "feedback_count": {**v["content"], **shown_with(db, v, "vendor")}.get("feedback_count"),
        }
        for v in entity_history(db, source, "vendor", vendor)
    ]
    return {
        "source": source,
        "vendor": vendor,
        "profile": profile,
        "listings": [listings[k] for k in sorted(listings)],
        "feedback_by_month": dict(sorted(months.items())),
    }
