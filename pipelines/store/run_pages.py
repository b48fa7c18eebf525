"""A run's page records, wherever the writer put them: `pages`, or packs of noise-only pages.

Every reader of a run's pages (resume, reparse, exports, the market's clock, displayed
values) goes through here, so none needs to know which pages were packed
(pipelines/store/page_packs.py). Records come by URL, merged from one indexed cursor on
`pages` and the run's packs. A URL stored twice in a run (a replayed page: one record in
each place, or in two packs) is given once, its latest fetch, as `pages` alone did by
replacing the record.
"""

from __future__ import annotations

import heapq
import logging
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pipelines.store.page_packs import run_packs
from pipelines.store.pages import load_bodies, page_id
from pipelines.store.schema import PAGES

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from pymongo.database import Database

logger = logging.getLogger(__name__)

# What the merge itself reads from `pages`, whatever fields the caller asked for.
MERGE_FIELDS = ("url", "fetched_at")
# Pages per reply from `pages`: a record can hold a few hundred displayed entries.
BATCH = 100


def run_pages(
    db: Database,
    run_id: str,
    fields: Sequence[str] | None = None,
    *,
    having: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The run's page records by URL: `fields` of each (and `_id`), or the whole record,
    whose packed pages carry their body document under `body`; with `having`, only the
    records where that field is set (not None)."""
    projection = None if fields is None else dict.fromkeys((*fields, *MERGE_FIELDS), 1)
    stored = db[PAGES].find({"run": run_id}, projection, batch_size=BATCH).sort("url", 1)
    merged = heapq.merge(stored, *run_packs(db, run_id), key=itemgetter("url"))
    for _, fetches in groupby(merged, key=itemgetter("url")):
        page = max(fetches, key=_fetched)  # the first of equals: `pages` is merged first
        if having is not None and page.get(having) is None:
            continue
        page.setdefault("_id", page_id(run_id, page["url"]))
        yield page if fields is None else _only(page, fields)


def run_page(db: Database, run_id: str, url: str, fields: Sequence[str]) -> dict[str, Any] | None:
    """One page of a run: its record in `pages` (one lookup on the (run, url) index), else
    its packed record (the run's packs read until found: a page that changed only in its
    noise is rarely asked for alone)."""
    projection = dict.fromkeys(fields, 1)
    found = db[PAGES].find_one({"run": run_id, "url": url}, projection)
    if found is not None:
        return found
    for pack in run_packs(db, run_id):
        for record in pack:
            if record["url"] == url:
                return _only({**record, "_id": page_id(run_id, url)}, fields)
    return None


def page_body(db: Database, page: dict[str, Any]) -> bytes:
    """The raw body of a page record read here: from the body document a packed page
    carries, else from `bodies`; KeyError if the archive does not hold it."""
    sha = page["sha256"]
    return load_bodies(db, [sha], [page["body"]] if "body" in page else ())[sha]


def _fetched(page: dict[str, Any]) -> Any:
    fetched = page.get("fetched_at")
    return (fetched is not None, fetched.timestamp() if fetched is not None else 0.0)


def _only(page: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {"_id": page["_id"], **{f: page[f] for f in fields if f in page}}
