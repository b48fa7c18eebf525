"""Hostile listing pages read as a crawl reads them (fixture server, `read_page`, normaliser):
a description nested 100,000 deep, and bytes the page's encoding cannot decode. The listing
is kept with its feedback, and each is a problem on the page that names what went wrong."""

from __future__ import annotations

import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from scrapy.http import HtmlResponse, Request

from crawler.pages import read_page
from crawler.sources.loader import load_source
from fixtures.market import truth
from fixtures.server import FixtureServer
from pipelines.normalise_pipeline import normalise_page

if TYPE_CHECKING:
    from collections.abc import Iterator

    from crawler.items import PageItem

DEPTH = 100_000
MARK = b'<div class="description">'


@pytest.fixture(scope="module")
def listing_page() -> Iterator[tuple[str, bytes, dict[str, Any]]]:
    """(URL, body, truth) of a demo listing with feedback, as the fixture server serves it."""
    listing = next(x for x in truth("demo", 1)["listings"] if len(x["feedback"]) >= 2)
    with FixtureServer(market="demo", day=1) as server:
        url = f"{server.url}/listing/{listing['listing_id']}"
        with urllib.request.urlopen(url) as response:
            yield url, response.read(), listing


def _read(url: str, body: bytes) -> PageItem:
    source = load_source("demo")
    response = HtmlResponse(
        url=url,
        body=body,
        headers={"Content-Type": "text/html; charset=utf-8"},
        request=Request(url),
    )
    item = read_page(source, response, "listing")
    normalise_page(item, source)
    return item


def test_a_100000_deep_description_keeps_the_listing_and_its_feedback(
    listing_page: tuple[str, bytes, dict[str, Any]],
) -> None:
    url, body, listing = listing_page
    deep = b"<div><span>" * (DEPTH // 2) + b"buried words" + b"</span></div>" * (DEPTH // 2)
    item = _read(url, body.replace(MARK, MARK + deep, 1))
    ((kind, key, record),) = item.records
    assert (kind, key, record["title"]) == ("listing", listing["listing_id"], listing["title"])
    price = record["price"]
    assert (str(price["amount"]), price["currency"]) == (
        listing["price"]["amount"],
        listing["price"]["currency"],
    )
    assert record["description"].startswith("buried words")
    assert listing["description"].split("\n")[0] in record["description"]
    assert len(item.feedback) == len(listing["feedback"]), "the page after it was lost"
    assert item.body == body.replace(MARK, MARK + deep, 1), "the raw page must stay as it came"
    assert any(p.startswith("page: elements nested more than 512 deep") for p in item.problems)
    assert any(
        p.startswith("field description: HTML nested ") and "read as plain text" in p
        for p in item.problems
    ), item.problems
    assert not any("normalisation failed" in p for p in item.problems), item.problems


def test_an_undecodable_page_is_kept_with_a_problem(
    listing_page: tuple[str, bytes, dict[str, Any]],
) -> None:
    url, body, listing = listing_page
    broken = body.replace(MARK, MARK + b"caf\xe9 \xff\xfe", 1)  # latin-1 bytes in UTF-8
    item = _read(url, broken)
    offset = broken.index(b"\xe9")
    assert (
        f"page: bytes at offset {offset} are not valid utf-8 (invalid continuation byte); "
        "read with replacement characters (U+FFFD), raw bytes archived"
    ) in item.problems
    ((_, key, record),) = item.records
    assert key == listing["listing_id"] and record["description"].startswith("caf\ufffd")
    assert item.body == broken


def test_a_page_that_shows_a_replacement_character_is_not_a_problem(
    listing_page: tuple[str, bytes, dict[str, Any]],
) -> None:
    url, body, _ = listing_page
    item = _read(url, body.replace(MARK, MARK + "\ufffd".encode(), 1))
    assert not any("not valid" in p for p in item.problems), item.problems
    assert not _read(url, body).problems
