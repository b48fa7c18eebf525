"""Value types exchanged between the Scrapy pipeline and the archive."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRef:
    """Handle on an open run; `seq` orders runs of one source and bounds version validity."""

    run_id: str
    source: str
    seq: int


@dataclass(frozen=True)
class Provenance:
    """Where a normalised value came from, so a published figure can be traced to a raw page."""

    url: str
    page_sha256: str
    fetched_at: datetime
    parser_version: str


@dataclass(frozen=True)
class EntityObservation:
    """One listing or vendor as extracted and normalised from one page."""

    key: str
    content: Mapping[str, Any]
    provenance: Provenance


@dataclass(frozen=True)
class PageRecord:
    """One fetched response with the page state the crawler decided for it."""

    url: str
    status: int | None
    fetched_at: datetime
    state: str
    kind: str | None
    body: bytes | None
    headers: Mapping[str, str]
    server_date: datetime | None = None
    error: str | None = None
    redirected_from: tuple[str, ...] = ()  # the URLs asked for, when `url` is where they led
    #: second prices shown beside a record's price (`price_hint`): they move with the
    #: rate every day, so they are kept with the run's page, never in a version
    displayed: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class BatchSummary:
    """What one `record_entities` call changed; the run's exact totals come from close_run."""

    kind: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    reappeared: int = 0


@dataclass(frozen=True)
class CloseSummary:
    """Outcome of closing a run: its final status and per-kind counts."""

    run_id: str
    status: str
    delisted: int
    counts: Mapping[str, Any] = field(default_factory=dict)
