"""The run verdict: a few odd pages make a run partial; most pages failing is template drift."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawler.items import PageItem
from pipelines.accounting import RunAccounting


def _page(n: int, *, ok: bool) -> PageItem:
    item = PageItem(
        source="demo",
        url=f"http://m/listing/{n}",
        kind="listing",
        state="listing",
        fetched_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    if ok:
        item.records = [("listing", str(n), {"title": "x"})]
    else:
        item.missing = ["title"]
    return item


@pytest.mark.parametrize(
    ("failed", "limit", "status"),
    [
        (0, 0.2, "complete"),
        (1, 0.2, "partial"),  # 10 %: the market's odd page
        (2, 0.2, "partial"),  # exactly the limit is still tolerated
        (3, 0.2, "failed"),  # 30 %: the blueprint no longer fits
        (1, 0.0, "failed"),  # a source that tolerates nothing
    ],
)
def test_share_of_failed_pages_decides_drift(failed: int, limit: float, status: str) -> None:
    accounting = RunAccounting(drift_limits={"listing": limit})
    for n in range(10):
        accounting.add(_page(n, ok=n >= failed))
    verdict, reasons = accounting.verdict([], "finished")
    assert verdict == status, reasons
    if status == "failed":
        assert reasons == [
            f"template drift on listing pages: {failed} of 10 failed extraction "
            f"(over {limit:.0%}); fields not found: listing.title"
        ]
