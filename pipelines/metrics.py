"""The archive's state per source as Prometheus metrics, read at each scrape.

`build_registry(db)` gives a registry to serve over HTTP; `write_textfile(db, path)` writes
the same metrics for node_exporter's textfile collector (a cron job after each crawl).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pipelines.store.schema import KINDS, RUNS, SOURCES

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from prometheus_client.metrics_core import Metric
    from pymongo.database import Database

logger = logging.getLogger(__name__)

#: every status a run can end with; the state set marks the last run's with 1
RUN_STATUSES = ("complete", "partial", "failed", "interrupted")


def _seconds(value: Any) -> float | None:
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


class ArchiveCollector(Collector):
    """Reads the `sources` summaries and each source's last runs when collected."""

    def __init__(self, db: Database[Any]) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        pages = GaugeMetricFamily(
            "darkarchive_last_run_pages",
            "Pages of the source's last closed run, by page state",
            labels=["source", "state"],
        )
        items = GaugeMetricFamily(
            "darkarchive_last_run_items",
            "Listings or vendors observed by the source's last closed run",
            labels=["source", "kind"],
        )
        listed = GaugeMetricFamily(
            "darkarchive_listed",
            "Listings or vendors currently listed (not delisted) in the archive",
            labels=["source", "kind"],
        )
        duration = GaugeMetricFamily(
            "darkarchive_last_run_duration_seconds",
            "Wall time of the source's last closed run",
            labels=["source"],
        )
        status = GaugeMetricFamily(
            "darkarchive_last_run_status",
            "1 for the status the source's last closed run ended with, 0 for the others",
            labels=["source", "status"],
        )
        finished = GaugeMetricFamily(
            "darkarchive_last_run_timestamp_seconds",
            "When the source's last run closed (Unix time)",
            labels=["source"],
        )
        complete = GaugeMetricFamily(
            "darkarchive_last_complete_run_timestamp_seconds",
            "When the source's last complete run closed (Unix time)",
            labels=["source"],
        )
        for summary in self.db[SOURCES].find({}).sort("_id", 1):
            source = str(summary["_id"])
            for kind in KINDS:
                count = (summary.get("listed") or {}).get(kind)
                if count is not None:
                    listed.add_metric([source, kind], float(count))
            last = self._run(summary.get("last_run"))
            if last is not None:
                counts = last.get("counts") or {}
                for state, n in sorted((counts.get("pages_by_state") or {}).items()):
                    pages.add_metric([source, state], float(n))
                for kind in KINDS:
                    items.add_metric(
                        [source, kind], float((counts.get(kind) or {}).get("observed", 0))
                    )
                began, ended = _seconds(last.get("started_at")), _seconds(last.get("finished_at"))
                if began is not None and ended is not None:
                    duration.add_metric([source], max(0.0, ended - began))
                if ended is not None:
                    finished.add_metric([source], ended)
                for name in RUN_STATUSES:
                    status.add_metric([source, name], float(last.get("status") == name))
            good = self._run(summary.get("last_complete_run"))
            when = _seconds(good.get("finished_at")) if good else None
            if when is not None:
                complete.add_metric([source], when)
        yield from (pages, items, listed, duration, status, finished, complete)

    def _run(self, run_id: str | None) -> dict[str, Any] | None:
        if not run_id:
            return None
        projection = {"counts": 1, "status": 1, "started_at": 1, "finished_at": 1}
        return self.db[RUNS].find_one({"_id": run_id}, projection)


def build_registry(db: Database[Any]) -> CollectorRegistry:
    """A registry whose metrics are read from the archive each time it is collected."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ArchiveCollector(db))
    return registry


def write_textfile(db: Database[Any], path: Path | str) -> None:
    """Write the metrics atomically for node_exporter's textfile collector (`*.prom`)."""
    write_to_textfile(str(path), build_registry(db))
    logger.info("archive metrics written to %s", path)
