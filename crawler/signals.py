"""darkarchive's own signals, sent through the crawler's signal manager."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

#: something happened that belongs in the run's record (kind, reason, url, detail)
run_event = object()


def record_run_event(
    crawler: Crawler,
    kind: str,
    reason: str,
    url: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Put a component's decision on the run (the archive pipeline stores it)."""
    crawler.signals.send_catch_log(
        run_event, kind=kind, reason=reason, url=url, detail=detail or {}
    )
