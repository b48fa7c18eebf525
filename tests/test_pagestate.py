"""Page states: challenge pages are recognised before anything is extracted from them."""

from __future__ import annotations

import pytest
from scrapy.http import HtmlResponse, TextResponse

from crawler.pagestate import classify
from crawler.sources.loader import load_source

SOURCE = load_source("demo")
BASE = "http://127.0.0.1:8800"


def _page(path: str, body: str, status: int = 200, content_type: str = "text/html") -> TextResponse:
    cls = HtmlResponse if content_type == "text/html" else TextResponse
    return cls(
        url=BASE + path,
        status=status,
        body=body.encode(),
        headers={"Content-Type": f"{content_type}; charset=utf-8"},
    )


@pytest.mark.parametrize(
    ("path", "body", "status", "content_type", "kind", "state"),
    [
        ("/listing/l1", "<h1 class=listing-title>x</h1>", 200, "text/html", "listing", "listing"),
        ("/vendor/v", "<h1 class=vendor-name>v</h1>", 200, "text/html", "vendor", "vendor"),
        ("/category/a?page=2", "<p class=result-count>x</p>", 200, "text/html", "index", "index"),
        ("/", "<nav class=categories></nav>", 200, "text/html", "index", "index"),
        (
            "/listing/l1",
            "<form id=login><input name=u></form>",
            200,
            "text/html",
            "listing",
            "login_wall",
        ),
        ("/listing/l1", "<form class=captcha></form>", 200, "text/html", "listing", "captcha"),
        ("/", "<p>We are DOWN for maintenance</p>", 200, "text/html", "index", "maintenance"),
        ("/listing/l1", "gone", 404, "text/html", "listing", "not_found"),
        ("/listing/l1", "slow down", 429, "text/html", "listing", "rate_limited"),
        ("/listing/l1", "busy", 503, "text/html", "listing", "maintenance"),
        ("/listing/l1", "oops", 500, "text/html", "listing", "error"),
        ("/listing/l1", "{}", 200, "application/json", "listing", "other"),
        # A vendor link that leads somewhere else is not read as a vendor page.
        ("/about", "<h1>about</h1>", 200, "text/html", "vendor", "other"),
    ],
)
def test_classify(
    path: str, body: str, status: int, content_type: str, kind: str, state: str
) -> None:
    assert classify(SOURCE, _page(path, body, status, content_type), kind) == state
