"""The faster paths of extraction, normalisation and reparse give exactly what the slow ones gave.

Compiled selectors (crawler/extraction/compiled.py) against parsel's own `getall()`, the
memoised normalisers (pipelines/normalise/memo.py) against the normalisers, reparse's
one-pass canonical form against `canonical_json(to_bson(...))`, and the Decimal128 cache of
`to_bson` against a fresh conversion. Queries and values come from the source files and
from the corners each shortcut has to get right (scalars, strings as rows, EXSLT prefixes,
errors, Decimals that look equal but are written differently).
"""

from __future__ import annotations

import decimal
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import bson
import pytest
from bson.decimal128 import Decimal128
from parsel import Selector as ParselSelector
from scrapy.http import HtmlResponse

from crawler.extraction.compiled import matches, values
from crawler.reparse import _canonical
from pipelines.normalise import (
    NormaliseError,
    memo,
    parse_count,
    parse_date,
    parse_price,
    parse_quantity,
    parse_rate,
    parse_rating,
)
from pipelines.normalise.dates import zone
from pipelines.store.codec import canonical_json, to_bson

PAGE = """<html><head><title>t</title><script>var x = 1;</script></head><body>
<nav class="breadcrumb"><a href="/">Home</a> <a href="/c/x">Drugs</a>
 <a href="/c/x/y">MDMA</a></nav>
<h1 class="listing-title">  Pure &amp; clean\u00a0MDMA <b>84%</b> </h1>
<div class="sold-by"><a class="vendor-link" href="/vendor/k9?ref=1">k9</a></div>
<div class="price"><span class="price-primary"> 0.0045 BTC </span><span>≈ $301</span></div>
<div class="description"><p>Top   quality</p><!-- note --><p>Stealth<br>shipping</p></div>
<table class="tiers">
<tr class="tier"><td class="tier-qty">1 g</td><td class="tier-price">$20</td></tr>
<tr class="tier"><td class="tier-qty">5 g</td><td class="tier-price">$90</td></tr></table>
<ul class="rates"><li class="rate">1 BTC = $67,012.50</li><li class="rate">1 XMR = $162.30</li></ul>
<form id="login" action="/login"></form><img class="captcha" src="c.png">
</body></html>"""

QUERIES_CSS = [
    "h1.listing-title::text",
    "h1.listing-title",
    "nav.breadcrumb a:not(:first-child)::text",
    "div.sold-by a.vendor-link::attr(href)",
    "div.price span.price-primary::text",
    "div.description",
    "table.tiers tr.tier",
    "ul.rates li.rate::text",
    "form#login",
    "form.captcha, img.captcha",
    "div#queue",
    "p.none::text",
    "*::text",
]
QUERIES_XPATH = [
    "//h1/text()",
    "//a/@href",
    "count(//a)",
    "string(//h1)",
    "boolean(//form)",
    "boolean(//div[@id='queue'])",
    "//a[re:test(@href, '^/c/')]/text()",
    "set:distinct(//a/@href)",
    "//comment()",
    "//script/text()",
    "normalize-space(//div[@class='price'])",
    "1 + 1",
]


def parsel_values(node: Any, query: str, css: bool) -> list[str]:
    return (node.css(query) if css else node.xpath(query)).getall()


@pytest.fixture(scope="module")
def page() -> Any:
    return HtmlResponse("http://m.example/listing/1", body=PAGE.encode(), encoding="utf-8").selector


@pytest.mark.parametrize(
    ("query", "css"), [(q, True) for q in QUERIES_CSS] + [(q, False) for q in QUERIES_XPATH]
)
def test_compiled_values_are_parsels(page: Any, query: str, css: bool) -> None:
    assert values(page, query, css=css) == parsel_values(page, query, css)
    assert matches(page, query, css=css) == bool(page.css(query) if css else page.xpath(query))


@pytest.mark.parametrize(("query", "css"), [("td::text", True), ("./td[2]/text()", False)])
def test_compiled_values_on_rows(page: Any, query: str, css: bool) -> None:
    rows = page.css("table.tiers tr.tier")
    assert [values(r, query, css=css) for r in rows] == [parsel_values(r, query, css) for r in rows]


def test_rows_that_are_strings_and_xml_go_through_parsel(page: Any) -> None:
    """A list rule selecting attributes gives rows whose root is a string; an XML selector
    serialises as XML: both are parsel's to answer."""
    for row in page.xpath("//a/@href"):
        for query, css in ((".", False), ("text()", False), ("a", True)):
            assert values(row, query, css=css) == parsel_values(row, query, css)
    xml = ParselSelector(text="<r><a x='1'>v</a><b/></r>", type="xml")
    for query, css in (("a", True), ("//b", False), ("a::attr(x)", True)):
        assert values(xml, query, css=css) == parsel_values(xml, query, css)


@pytest.mark.parametrize(("query", "css"), [("h1[", True), ("//h1[", False), ("foo:bar()", False)])
def test_bad_selectors_raise_what_parsel_raises(page: Any, query: str, css: bool) -> None:
    with pytest.raises(Exception) as expected:
        parsel_values(page, query, css)
    with pytest.raises(type(expected.value)) as got:
        values(page, query, css=css)
    assert str(got.value) == str(expected.value)


BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("memoised", "direct"),
    [
        (lambda: memo.rate("1 BTC = $67,012.50"), lambda: parse_rate("1 BTC = $67,012.50")),
        (lambda: memo.rate("BTC/USD 0"), lambda: parse_rate("BTC/USD 0")),
        (lambda: memo.price("0.0045 BTC", None, None), lambda: parse_price("0.0045 BTC")),
        (
            lambda: memo.price("1.234,56", "EUR", ","),
            lambda: parse_price("1.234,56", default_currency="EUR", decimal_separator=","),
        ),
        (lambda: memo.price("-5 BTC", None, None), lambda: parse_price("-5 BTC")),
        (lambda: memo.quantity("100 x 10mg", None), lambda: parse_quantity("100 x 10mg")),
        (lambda: memo.count("1,204 sales"), lambda: parse_count("1,204 sales")),
        (lambda: memo.rating("4.2", Decimal(5)), lambda: parse_rating("4.2", scale=Decimal(5))),
        (
            lambda: memo.rating("4.2", Decimal("5.0")),
            lambda: parse_rating("4.2", scale=Decimal("5.0")),
        ),
        (lambda: memo.rating("4.2", None), lambda: parse_rating("4.2")),
        (
            lambda: memo.date("3 days ago", BASE, ("en",), None, UTC),
            lambda: parse_date("3 days ago", base=BASE, languages=("en",)),
        ),
        (
            lambda: memo.date("today at 14:05", BASE, ("en",), "DMY", zone("Europe/Moscow")),
            lambda: parse_date(
                "today at 14:05", base=BASE, date_order="DMY", timezone=zone("Europe/Moscow")
            ),
        ),
        (
            lambda: memo.date("3000 years ago", BASE, ("en",), None, UTC),
            lambda: parse_date("3000 years ago", base=BASE, languages=("en",)),
        ),
    ],
)
def test_memoised_normalisers_answer_as_the_normalisers(memoised: Any, direct: Any) -> None:
    """Twice, so the second answer comes from the cache; a text that raises raises again
    with the same message."""
    for _ in range(2):
        try:
            expected: Any = direct()
        except NormaliseError as exc:
            expected = exc
        if isinstance(expected, NormaliseError):
            with pytest.raises(type(expected), match=None) as got:
                memoised()
            assert str(got.value) == str(expected)
        else:
            got_value = memoised()
            assert got_value == expected
            assert repr(got_value) == repr(expected)  # Decimals as written: "5" is not "5.0"


def test_a_date_base_in_another_zone_is_the_same_instant() -> None:
    moscow = BASE.astimezone(timezone(timedelta(hours=3)))
    assert memo.date("2 days ago", moscow, ("en",), None, UTC) == parse_date(
        "2 days ago", base=BASE
    )


CONTENTS: list[Any] = [
    None,
    "text",
    {"b": 1, "a": [1, 2.5, True, None, "x"]},
    {"price": {"amount": Decimal("0.00450000"), "currency": "BTC"}},
    {"n": Decimal("1E+3"), "m": Decimal("-0"), "k": Decimal("123456789.123456789")},
    {"equal but written differently": [Decimal("1.0"), Decimal("1.00"), Decimal("1")]},
    {"when": datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)},
    {"naive": datetime(2026, 3, 1, 12, 0, 0, 999999)},
    {"zoned": datetime(2026, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=3)))},
    {"tuple": (1, ("a", Decimal("2.50"))), 3: "int key"},
    [Decimal128("12.5"), {"nested": {"deeper": [Decimal("7.25")]}}],
    {"unicode": "1\u00a0250 ₽ — «ok»"},
]


@pytest.mark.parametrize("content", CONTENTS)
def test_reparse_canonical_form_is_canonical_json_of_to_bson(content: Any) -> None:
    expected = canonical_json(to_bson({"v": content}))
    assert _canonical(content) == expected
    assert _canonical(content) == expected  # and again, from the memo


@pytest.mark.parametrize(
    "content",
    [
        {"too precise": Decimal("1." + "1" * 40)},
        {"not a json value": object()},
        {"a date, not a datetime": datetime(2026, 1, 1).date()},
    ],
)
def test_reparse_canonical_form_fails_as_before(content: Any) -> None:
    with pytest.raises(Exception) as expected:
        canonical_json(to_bson({"v": content}))
    with pytest.raises(type(expected.value)):
        _canonical(content)


def test_to_bson_cache_keeps_each_decimal_as_written() -> None:
    """Decimal("1.0") == Decimal("1.00") as dictionary keys; their BSON is not the same."""
    for _ in range(2):
        for text in ("1.0", "1.00", "1", "-0", "1E+3", "0.00450000", "NaN", "Infinity"):
            converted = to_bson({"v": [Decimal(text)]})
            assert bson.encode(converted) == bson.encode({"v": [Decimal128(Decimal(text))]})
            assert str(converted["v"][0]) == str(Decimal128(Decimal(text)))
    with pytest.raises(decimal.Inexact):
        to_bson(Decimal("1." + "1" * 40))
