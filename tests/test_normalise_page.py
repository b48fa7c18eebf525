"""A page with values no parser or database can hold: problems recorded, nothing raised,
nothing unstorable passed on, and the good values of the page kept."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from scrapy.http import HtmlResponse

from crawler.items import PageItem
from crawler.pages import read_page
from crawler.sources.loader import load_source
from pipelines.accounting import RunAccounting
from pipelines.normalise_pipeline import _check_storable, normalise_page

SOURCE = load_source("demo")
FETCHED = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _listing(price: str, feedback: str) -> str:
    return f"""<html><body>
    <ul class="rates"><li class="rate">1 BTC = $67,012.50</li></ul>
    <h1 class="listing-title">Blue Lotus</h1>
    <div class="sold-by"><a class="vendor-link" href="/vendor/mossy-owl">mossy owl</a></div>
    <div class="price"><span class="price-primary">{price}</span></div>
    <section class="feedback">{feedback}</section>
    </body></html>"""


def _read(html: str) -> tuple[PageItem, RunAccounting]:
    response = HtmlResponse(
        url="http://m.test/listing/l1",
        body=html.encode(),
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    item = read_page(SOURCE, response, "listing", fetched_at=FETCHED)
    normalise_page(item, SOURCE)
    accounting = RunAccounting()
    accounting.add(item)
    return item, accounting


def _fb(rating: str, date: str, buyer: str = "") -> str:
    buyer_span = f'<span class="fb-buyer">{buyer}</span>' if buyer else ""
    return (
        f'<div class="fb"><span class="fb-rating">{rating}</span>{buyer_span}'
        f'<span class="fb-date">{date}</span><p class="fb-text">ok</p></div>'
    )


def test_a_40_digit_price_is_a_problem_on_the_field_and_the_listing_is_kept() -> None:
    price = "1" * 40 + " BTC"
    item, accounting = _read(_listing(price, _fb("5/5", "yesterday", "a***b")))
    ((_, key, content),) = item.records
    assert (key, content["price"]) == ("l1", {"text": price, "error": "unreadable"})
    assert len(item.feedback) == 1
    assert any(p.startswith("field price: BTC amount: 40 digits") for p in item.problems)
    assert accounting.extraction_failures == 0


def test_a_record_mongodb_cannot_hold_is_refused_with_its_page() -> None:
    """The last guard, for values no parser refused: a record over Decimal128's 34 digits."""
    item, _ = _read(_listing("0.0045 BTC", _fb("5/5", "yesterday", "a***b")))
    item.records[0][2]["price"]["amount"] = Decimal("1" * 40)
    _check_storable(item)
    assert item.records == [] and item.feedback == []
    assert any("listing l1 cannot be stored" in p for p in item.problems)


def test_unreadable_rating_and_missing_buyer_still_keep_the_sale() -> None:
    item, _ = _read(_listing("0.0045 BTC", _fb("Positive", "2 weeks ago")))
    ((_, _, content),) = item.records
    assert content["price"]["currency"] == "BTC"
    (entry,) = item.feedback
    assert (entry["rating"], entry["rating_text"], entry["buyer"]) == (None, "Positive", "")
    assert any("feedback[0].rating" in p for p in item.problems)


def test_a_date_out_of_range_is_a_problem_and_only_that_row_is_lost() -> None:
    rows = _fb("5/5", "3000 years ago", "a***b") + _fb("4/5", "yesterday", "c***d")
    item, accounting = _read(_listing("0.0045 BTC", rows))
    assert len(item.records) == 1
    assert [e["buyer"] for e in item.feedback] == ["c***d"]
    assert any("feedback[0].date" in p for p in item.problems)
    assert accounting.extraction_failures == 0


def test_a_feedback_row_without_its_date_is_dropped_not_the_listing() -> None:
    row = '<div class="fb"><span class="fb-rating">5/5</span><p class="fb-text">ok</p></div>'
    item, accounting = _read(_listing("0.0045 BTC", row + _fb("4/5", "yesterday", "c***d")))
    assert len(item.records) == 1 and len(item.feedback) == 1
    assert "feedback[0] dropped: date not found" in item.problems
    assert accounting.extraction_failures == 0


def test_a_redirected_page_keeps_the_urls_that_were_asked_for() -> None:
    """A listing that redirects to a login page must stay traceable to the listing."""
    from scrapy import Request

    asked = "http://m.test/listing/l1"
    request = Request("http://m.test/login", meta={"kind": "listing", "redirect_urls": [asked]})
    response = HtmlResponse(
        url="http://m.test/login",
        body=b"<form id='login'></form>",
        headers={"Content-Type": "text/html"},
        request=request,
    )
    item = read_page(SOURCE, response, "listing", fetched_at=FETCHED)
    assert (item.state, item.redirected_from) == ("login_wall", [asked])
