"""The scheduler's Prometheus gauges, served on loopback with the archive's own metrics."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from prometheus_client.metrics_core import Metric
    from pymongo.database import Database

    from crawler.scheduling.state import SourceState

logger = logging.getLogger(__name__)


class SchedulerCollector(Collector):
    """Per source: next due time, consecutive failures, last exit code, running or not.

    Read from the scheduler's in-memory state at scrape time, so a scrape never waits
    for the database.
    """

    def __init__(self, states: Callable[[], Mapping[str, SourceState]]) -> None:
        self._states = states

    def collect(self) -> Iterator[Metric]:
        states = dict(self._states())
        due = GaugeMetricFamily(
            "darkarchive_schedule_next_due_timestamp_seconds",
            "When the source's next crawl is due (Unix time)",
            labels=["source"],
        )
        failures = GaugeMetricFamily(
            "darkarchive_schedule_consecutive_failures",
            "Failed crawls of the source in a row (its delay is backed off by as many steps)",
            labels=["source"],
        )
        exit_code = GaugeMetricFamily(
            "darkarchive_schedule_last_exit_code",
            "Exit code of the source's last crawl (0 complete, 4 partial, 5 refused…)",
            labels=["source"],
        )
        running = GaugeMetricFamily(
            "darkarchive_schedule_running", "1 while a crawl of the source runs", labels=["source"]
        )
        for source, state in sorted(states.items()):
            if state.next_due is not None:
                due.add_metric([source], state.next_due.timestamp())
            failures.add_metric([source], state.consecutive_failures)
            if state.last_exit_code is not None:
                exit_code.add_metric([source], state.last_exit_code)
            running.add_metric([source], 1 if state.running else 0)
        yield from (due, failures, exit_code, running)


def archive_registry(db: Database) -> tuple[CollectorRegistry, bool]:
    """`pipelines.metrics.build_registry(db)` when that module exists, else an empty registry;
    and whether the archive's metrics are in it."""
    try:
        module: Any = importlib.import_module("pipelines.metrics")
    except ImportError:
        return CollectorRegistry(), False
    registry: CollectorRegistry = module.build_registry(db)
    return registry, True


def serve_metrics(
    port: int, db: Database, states: Callable[[], Mapping[str, SourceState]]
) -> Callable[[], None]:
    """Serve the metrics on 127.0.0.1:`port`; returns the function that stops serving."""
    registry, with_archive = archive_registry(db)
    registry.register(SchedulerCollector(states))
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    logger.info(
        "metrics on http://127.0.0.1:%d/metrics (scheduler%s)",
        port,
        " and archive" if with_archive else " only: pipelines.metrics is not installed",
    )

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
