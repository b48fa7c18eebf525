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


def _index(path: str, links: list[str], **expected: int) -> PageItem:
    item = PageItem(
        source="demo",
        url=f"http://m{path}",
        kind="index",
        state="index",
        fetched_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    item.links = {"listing": [f"http://m/listing/{n}" for n in links]}
    item.expected = dict(expected)
    return item


def _listing_pages(accounting: RunAccounting, names: list[str]) -> None:
    for name in names:
        page = _page(0, ok=True)
        page.url = f"http://m/listing/{name}"
        accounting.add(page)


@pytest.mark.parametrize(
    ("pages", "status", "reasons", "shown"),
    [
        # A listing in two categories: each category shows its own count, the start page
        # the market's total; nothing is overcounted, the run is complete.
        (
            [
                _index("/", [], listing_total=3),
                _index("/category/a", ["x", "y"], listing=2),
                _index("/category/b", ["y", "z"], listing=2),
                _index("/category/b?page=2", [], listing=2),
            ],
            "complete",
            [],
            3,  # the market's total, not 2 + 2
        ),
        (
            [_index("/category/a", ["x", "y"], listing=3), _index("/category/b", ["z"], listing=1)],
            "partial",
            ["1 page(s) linked fewer listings than they show: /category/a shows 3 but linked 2"],
            4,  # no total shown: the pages' counts added up
        ),
        (
            [_index("/", [], listing_total=5), _index("/category/a", ["x", "y", "z"], listing=3)],
            "partial",
            ["the market shows 5 listings but its pages linked 3"],
            5,
        ),
    ],
    ids=["overlapping-categories", "a-short-category", "short-of-the-total"],
)
def test_counts_the_market_shows_are_checked_per_page_and_in_all(
    pages: list[PageItem], status: str, reasons: list[str], shown: int
) -> None:
    accounting = RunAccounting()
    for page in pages:
        accounting.add(page)
    _listing_pages(accounting, ["x", "y", "z"])
    assert accounting.verdict([], "finished") == (status, reasons)
    assert accounting.counts()["expected_listings"] == shown
