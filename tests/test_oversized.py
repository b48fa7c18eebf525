"""One oversized record never wedges a source (issue 10 item 1).

A listing page with 80,000 tier rows becomes an 18 MB record, over MongoDB's 16 MB
document limit. Against the real server: the record becomes a problem on its page (with
its key and size), the page stays archived, and the rest of the batch is written. Lists
are capped per source before they get there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from crawler.items import PageItem
from pipelines.store.page_writes import PageWrites
from pipelines.store.sizes import MAX_DOCUMENT, cap_lists, content_size

if TYPE_CHECKING:
    from pipelines.store.archive import Archive

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TIERS = 80_000


def _tier(n: int) -> dict[str, Any]:
    return {
        "quantity": {"amount": Decimal(n), "unit": "g", "count": None, "text": f"{n} g pack"},
        "price": {"amount": Decimal("12.50") + n, "currency": "USD", "text": f"${n}.50 each"},
        "price_per_unit": {"amount": Decimal("12.50"), "currency": "USD", "unit": "g"},
        "note": "x" * 60,
    }


def _listing(key: str, tiers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"title": f"listing {key}", "vendor": "v1", "price": None, "tiers": tiers}


def _page(key: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "page",
        "url": f"http://m/listing/{key}",
        "status": 200,
        "fetched_at": T0,
        "state": "listing",
        "kind": "listing",
        "body": f"<html>{key}</html>".encode(),
        "records": [["listing", key, content]],
        "feedback": [],
        "problems": [],
    }


def _writes(archive: Archive) -> tuple[PageWrites, list[int], Any]:
    run = archive.open_run("mkt", parser_version="p1", started_at=T0)
    failures = [0]

    def failed() -> None:
        failures[0] += 1

    return PageWrites(archive, run, parser_version="p1", on_failure=failed), failures, run


def test_an_18_mb_record_is_a_problem_and_the_rest_of_its_batch_is_stored(
    archive: Archive,
) -> None:
    huge = _listing("big", [_tier(n) for n in range(TIERS)])
    size = content_size(huge)
    assert size > 18_000_000, size
    writes, failures, run = _writes(archive)
    for key, content in (("a", _listing("a", [])), ("big", huge), ("b", _listing("b", []))):
        writes.write(_page(key, content))
    writes.checkpoint()
    db = archive.db
    assert sorted(d["key"] for d in db.listings.find({}, {"key": 1})) == ["a", "b"]
    assert db.pages.count_documents({"run": run.run_id}) == 3, "the page stays archived"
    (event,) = db.run_events.find({"run": run.run_id, "kind": "archive"})
    assert event["url"] == "http://m/listing/big"
    assert event["reason"].startswith(f"listing big not stored: its record is {size / 1e6:.1f} MB")
    assert "16 MB document limit" in event["reason"]
    assert event["detail"] == {"key": "big", "entity": "listing", "bytes": size}
    assert failures == [1]
    summary = archive.close_run(
        run, status="partial", counts={}, reasons=["1 write(s) to the archive failed"]
    )
    assert summary.counts["listing"]["observed"] == 2


def test_a_record_the_first_estimate_misses_is_refused_by_the_server_not_the_batch(
    archive: Archive,
) -> None:
    """Small first tiers, one enormous one: the estimate says small, the write is refused;
    that refusal names one document, so the batch is written one by one around it."""
    tiers = [_tier(n) for n in range(8)] + [{"note": "y" * (MAX_DOCUMENT + 1024)}]
    sneaky = _listing("sneaky", tiers)
    assert content_size(sneaky) < 1024 * 1024, "the first estimate misses it"
    writes, failures, run = _writes(archive)
    for key, content in (("a", _listing("a", [])), ("sneaky", sneaky), ("b", _listing("b", []))):
        writes.write(_page(key, content))
    writes.checkpoint()
    db = archive.db
    assert sorted(d["key"] for d in db.listings.find({}, {"key": 1})) == ["a", "b"]
    (event,) = db.run_events.find({"run": run.run_id, "kind": "archive"})
    assert event["reason"].startswith("listing sneaky not stored: ")
    assert event["url"] == "http://m/listing/sneaky"
    assert failures == [1]


@pytest.mark.parametrize(("tiers", "feedback", "problems"), [(10, 3, 0), (TIERS, 600, 2)])
def test_lists_are_capped_per_source_and_the_cut_is_a_problem(
    tiers: int, feedback: int, problems: int
) -> None:
    item = PageItem(source="mkt", url="http://m/listing/big", kind="listing", state="listing",
                    fetched_at=T0)  # fmt: skip
    item.records = [("listing", "big", _listing("big", [{"n": n} for n in range(tiers)]))]
    item.feedback = [{"buyer": f"b{n}"} for n in range(feedback)]
    cap_lists(item, 500)
    assert len(item.problems) == problems
    assert len(item.records[0][2]["tiers"]) == min(tiers, 500)
    assert len(item.feedback) == min(feedback, 500)
    if problems:
        assert item.problems == [
            f"listing big: tiers has {TIERS} items; kept the first 500 "
            "(pages.listing.max_list_items)",
            "feedback of big has 600 entries; kept the first 500 (pages.listing.max_list_items)",
        ]
        assert content_size(item.records[0][2]) < 1024 * 1024


def test_the_cap_is_a_source_setting(tmp_path: Any) -> None:
    from crawler.sources.loader import DEFAULT_SOURCES_DIR, SourceConfigError, load_source

    text = (DEFAULT_SOURCES_DIR / "demo.yaml").read_text(encoding="utf-8")
    assert load_source(DEFAULT_SOURCES_DIR / "demo.yaml").pages["listing"].max_list_items == 500
    path = tmp_path / "demo.yaml"
    path.write_text(text.replace("  listing:\n", "  listing:\n    max_list_items: 50\n", 1))
    assert load_source(path).pages["listing"].max_list_items == 50
    path.write_text(text.replace("  listing:\n", "  listing:\n    max_list_items: 0\n", 1))
    with pytest.raises(SourceConfigError, match="max_list_items"):
        load_source(path)


def _tier_rows(count: int) -> str:
    rows = "".join(
        f'<tr class="tier"><td class="tier-qty">{n} g</td><td class="tier-price">{n} USD</td></tr>'
        for n in range(1, count + 1)
    )
    return f'<html><body><table class="tiers">{rows}</table></body></html>'


# (rows on the page, cap, list rule: css or xpath)
EXTRACTION_CAPS = [
    (10, 500, {"css": "table.tiers tr.tier"}),
    (500, 500, {"css": "table.tiers tr.tier"}),
    (501, 500, {"css": "table.tiers tr.tier"}),
    (TIERS, 500, {"css": "table.tiers tr.tier"}),
    (TIERS, 7, {"xpath": "//table[@class='tiers']//tr"}),
    (40, 7, {"css": "table.tiers tr.tier, table.tiers tr.none"}),  # a union: cut in order
]


@pytest.mark.parametrize(("rows", "cap", "rule"), EXTRACTION_CAPS)
def test_extraction_reads_only_the_first_rows_of_a_list_and_counts_them_all(
    rows: int, cap: int, rule: dict[str, str]
) -> None:
    """The cut happens where rows are selected: 80,000 rows are counted, 500 extracted."""
    from parsel import Selector

    from crawler.extraction.blueprint import extract_page
    from crawler.sources.model import PageBlueprint

    fields = {"quantity": {"css": "td.tier-qty::text", "required": True},
              "price": {"css": "td.tier-price::text"}}  # fmt: skip
    blueprint = PageBlueprint.model_validate(
        {"max_list_items": cap, "lists": {"tiers": {**rule, "fields": fields}}}
    )
    extraction = extract_page(blueprint, Selector(text=_tier_rows(rows)), "http://m/listing/1")
    tiers = extraction.fields["tiers"]
    assert len(tiers) == min(rows, cap)
    assert [t["quantity"] for t in tiers[:2]] == ["1 g", "2 g"]
    assert tiers[-1]["quantity"] == f"{min(rows, cap)} g"
    assert extraction.list_totals == ({"tiers": rows} if rows > cap else {})


def test_a_page_cut_at_extraction_reports_the_rows_it_had() -> None:
    """The problem on the page names the rows the page had, not the rows extracted."""
    from scrapy.http import HtmlResponse, Request

    from crawler.pages import read_page
    from crawler.sources.loader import DEFAULT_SOURCES_DIR, load_source
    from fixtures.hostile import OVERSIZED_TIERS, hostile_page
    from fixtures.market import build_world
    from pipelines.normalise_pipeline import normalise_page

    answer = hostile_page(build_world("demo", 1), "/listing/hostile-oversized")
    assert answer is not None and answer.html is not None
    url = "http://m/listing/hostile-oversized"
    request = Request(url, meta={"page_state": "listing"})
    response = HtmlResponse(url, body=answer.html.encode(), encoding="utf-8", request=request)
    source = load_source(DEFAULT_SOURCES_DIR / "demo.yaml")
    item = read_page(source, response, "listing", fetched_at=T0)
    assert len(item.fields["tiers"]) == 500, "rows past the cap are never extracted"
    assert item.list_totals == {"tiers": OVERSIZED_TIERS}
    normalise_page(item, source)
    cap_lists(item, 500)
    (_, key, content), *_ = item.records
    assert key == "hostile-oversized" and len(content["tiers"]) == 500
    assert f"listing hostile-oversized: tiers has {OVERSIZED_TIERS} items; kept the first 500 " \
        "(pages.listing.max_list_items)" in item.problems  # fmt: skip


def test_feedback_cut_at_extraction_is_reported_with_its_total() -> None:
    item = PageItem(source="mkt", url="http://m/listing/big", kind="listing", state="listing",
                    fetched_at=T0)  # fmt: skip
    item.records = [("listing", "big", _listing("big", [{"n": n} for n in range(500)]))]
    item.feedback = [{"buyer": f"b{n}"} for n in range(500)]
    item.list_totals = {"tiers": 80_000, "feedback": 1200}
    cap_lists(item, 500)
    assert item.problems == [
        "listing big: tiers has 80000 items; kept the first 500 (pages.listing.max_list_items)",
        "feedback of big has 1200 entries; kept the first 500 (pages.listing.max_list_items)",
    ]
