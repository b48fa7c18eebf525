"""What the spider hands to the pipelines: one record per fetched (or failed) page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class PageItem:
    """A page with its provenance, its state and the raw fields read from it.

    Normalisation fills `records` (entities found on the page) and `problems` (what could
    not be read); the archive pipeline stores the page whatever its state.
    """

    source: str
    url: str
    kind: str
    state: str
    fetched_at: datetime
    status: int | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    server_date: datetime | None = None
    error: str | None = None
    redirected_from: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    coverage: float | None = None
    links: dict[str, list[str]] = field(default_factory=dict)
    rates: list[str] = field(default_factory=list)
    rate_quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: second prices shown beside a record's price (`price_hint`), kept outside its content
    displayed: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)
    records: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: lists extraction cut at `max_list_items`: name -> rows the page had (see cap_lists)
    list_totals: dict[str, int] = field(default_factory=dict)
