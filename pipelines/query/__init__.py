"""The query library: what the CLI, the HTTP API and the web view ask the archive.

Every function takes a pymongo `Database` and answers from the versioned store with
equality-led index lookups only (SecantusDB scans anything else; see
notes/mongodb-store.md), so it behaves the same on the embedded server and real MongoDB.
Results are plain dicts of Decimals, datetimes and strings; `jsonable` (from the export)
turns them into JSON the way the export does.

- `as_of(db, source, run=… | at=…)`: listings or vendors as one run saw them, with USD;
  `as_of_stream` gives them one at a time, in bounded memory.
- `price_series(db, source, key)`: a listing's versions and its USD price per run.
- `changes(db, source, run_a, run_b)`: new, changed (with fields), delisted, relisted.
- `search(db, Search(text=…, source=…, …))`: words, category, vendor, shipping, USD.
- `vendor_activity(db, source, vendor)`: a vendor's listings and feedback over time.
- `sales(db, source, by="vendor"|"listing", since=…, until=…)`: Soska & Christin estimates.
- `reindex(db, source)`: search terms for versions written before they existed.
"""

from __future__ import annotations

import logging

from pipelines.query.asof import as_of, as_of_stream, valid_versions
from pipelines.query.changes import changes
from pipelines.query.reindex import reindex
from pipelines.query.runs import QueryError, Run, resolve_run, source_runs
from pipelines.query.sales import CAVEATS, METHOD, sales
from pipelines.query.search import Search, search
from pipelines.query.series import price_series
from pipelines.query.vendors import vendor_activity
from pipelines.store.tokens import fold, listing_tokens, query_terms, words

logger = logging.getLogger(__name__)

__all__ = [
    "CAVEATS",
    "METHOD",
    "QueryError",
    "Run",
    "Search",
    "as_of",
    "as_of_stream",
    "changes",
    "fold",
    "listing_tokens",
    "price_series",
    "query_terms",
    "reindex",
    "resolve_run",
    "sales",
    "search",
    "source_runs",
    "valid_versions",
    "vendor_activity",
    "words",
]
