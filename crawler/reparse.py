"""Reparse a run from its archived pages: what would the current parser read, without refetching?

A parser fix must be checked against the pages a study already used. This reads every
page the run archived, runs today's extraction and normalisation over it, and compares the
result with the versions the run observed, entity by entity. It writes nothing: storing
versions under a second parser version beside the first is a store design of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crawler.pages import read_page
from crawler.replay import rebuild_response
from pipelines.normalise_pipeline import normalise_page
from pipelines.store.codec import canonical_json, to_bson
from pipelines.store.queries import get_run, load_body, observed
from pipelines.store.schema import PAGES

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database

    from crawler.items import PageItem
    from crawler.sources.model import Source

logger = logging.getLogger(__name__)


@dataclass
class ReparseReport:
    """Counts of a reparse and the entities whose content would differ."""

    run_id: str
    pages: int = 0
    same: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)


def _canonical(content: Any) -> Any:
    return canonical_json(to_bson({"v": content}))


def _reread(db: Database[Any], source: Source, run_id: str) -> Iterator[PageItem]:
    """Every archived page of the run, read by today's extraction and normalisation."""
    for page in db[PAGES].find({"run": run_id, "sha256": {"$ne": None}}).sort("url"):
        body = load_body(db, page["sha256"])
        response = rebuild_response(
            page["url"], page["status"], page["headers"], body, page["kind"]
        )
        item = read_page(source, response, page["kind"], fetched_at=page["fetched_at"])
        normalise_page(item, source)
        yield item


def reparse_run(db: Database[Any], source: Source, run_id: str) -> ReparseReport:
    """Compare what the run stored with what the current parser reads from the same pages."""
    run = get_run(db, run_id)
    if run is None or run["source"] != source.id:
        raise KeyError(f"no run {run_id!r} of source {source.id!r}")
    report = ReparseReport(run_id=run_id)
    stored = {
        (kind, entity["key"]): entity["content"]
        for kind in ("listing", "vendor")
        for entity in observed(db, run_id, kind)
    }
    seen = set()
    for item in _reread(db, source, run_id):
        report.pages += 1
        report.problems.extend({"url": item.url, "problem": p} for p in item.problems)
        for kind, key, content in item.records:
            seen.add((kind, key))
            before = stored.get((kind, key))
            if before is not None and _canonical(before) == _canonical(content):
                report.same += 1
                continue
            fields = sorted(
                name
                for name in set(content) | set(before or {})
                if before is None or _canonical(content.get(name)) != _canonical(before.get(name))
            )
            report.differences.append(
                {"kind": kind, "key": key, "stored": before is not None, "fields": fields}
            )
    for kind, key in sorted(set(stored) - seen):
        report.differences.append({"kind": kind, "key": key, "stored": True, "reread": False})
    return report
