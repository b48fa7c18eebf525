"""Blueprint extraction: selectors, regexes and processors on small pages."""

from __future__ import annotations

import pytest
from parsel import Selector

from crawler.extraction.blueprint import extract_page, extract_value
from crawler.extraction.processors import strip
from crawler.sources.model import FieldRule, ListRule, PageBlueprint

PAGE = """
<html><body>
<h1 class="t">  Blue   Lotus
   Extract </h1>
<nav class="crumbs"><a href="/">Home</a><a href="/c/a">Herbs</a><a href="/c/b">Extracts</a></nav>
<a class="v" href="/vendor/mossy-owl?ref=1">mossy owl</a>
<p class="count">Showing 1–20 of 1,057 listings</p>
<table><tr class="tier"><td class="q">10 g</td><td class="p">0.001 BTC</td></tr>
<tr class="tier"><td class="q">20 g</td><td class="p"></td></tr></table>
</body></html>
"""
URL = "http://market.test/listing/l00042"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (FieldRule(css="h1.t::text", processors=("strip",)), "Blue Lotus Extract"),
        (FieldRule(xpath="//h1/text()", processors=("strip", "upper")), "BLUE LOTUS EXTRACT"),
        (FieldRule(css="nav.crumbs a::text", multiple=True), ["Home", "Herbs", "Extracts"]),
        (FieldRule(css="nav.crumbs a::text", processors=("join",)), "Home Herbs Extracts"),
        (FieldRule(css="nav.crumbs a::text", processors=("join_lines",)), "Home\nHerbs\nExtracts"),
        (FieldRule(css="a.v::text", processors=("upper", "lower")), "mossy owl"),
        (FieldRule(css="table", processors=("html_to_text",)), "10 g 0.001 BTC\n\n20 g"),
        (FieldRule(css="a.v::attr(href)", regex=r"/vendor/([^/?#]+)"), "mossy-owl"),
        (
            FieldRule(css="a.v::attr(href)", processors=("absolute_url",)),
            "http://market.test/vendor/mossy-owl?ref=1",
        ),
        (FieldRule(css="p.count::text", regex=r"of\s+([\d,]+)"), "1,057"),
        (FieldRule(url_regex=r"/listing/([^/?#]+)$"), "l00042"),
        (FieldRule(url_regex=r"/vendor/([^/?#]+)$"), None),
        (FieldRule(const="USD"), "USD"),
        (FieldRule(css="h2::text"), None),
        (FieldRule(css="h2::text", multiple=True), []),
    ],
)
def test_field_rules(rule: FieldRule, expected: object) -> None:
    assert extract_value(rule, Selector(text=PAGE), URL) == expected


def test_page_with_lists_reports_missing_required_fields_and_coverage() -> None:
    blueprint = PageBlueprint(
        fields={
            "title": FieldRule(css="h1.t::text", processors=("strip",), required=True),
            "price": FieldRule(css="span.price::text", required=True),
            "vendor": FieldRule(css="a.v::text"),
            "listing_id": FieldRule(url_regex=r"/listing/(\w+)"),
        },
        lists={
            "tiers": ListRule(
                css="tr.tier",
                fields={
                    "quantity": FieldRule(css="td.q::text", required=True),
                    "price": FieldRule(css="td.p::text", required=True),
                },
            )
        },
    )
    extraction = extract_page(blueprint, Selector(text=PAGE), URL)
    assert extraction.fields["title"] == "Blue Lotus Extract"
    assert extraction.fields["tiers"] == [{"quantity": "10 g", "price": "0.001 BTC"}]
    assert extraction.missing == ["price"]
    assert extraction.dropped_rows == ["tiers[1] dropped: price not found"]
    assert extraction.coverage == pytest.approx(3 / 4)


def test_a_template_joins_several_groups_of_a_url_or_a_value() -> None:
    """An id made of two URL parts (a vendor-shop market's `<vendor>-<n>`)."""
    node = Selector(text="<p class='ref'>Ref: ACME / 0012</p>")
    by_url = FieldRule(url_regex=r"/shop/([^/]+)/item/(\d+)", template="{1}-{2}")
    assert extract_value(by_url, node, "http://m/shop/acme/item/12") == "acme-12"
    by_text = FieldRule(css="p.ref::text", regex=r"(\w+) / (\d+)", template="{2}@{1}")
    assert extract_value(by_text, node, "http://m/") == "0012@ACME"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"css": "p", "template": "{1}"}, "a template needs a regex or url_regex"),
        ({"url_regex": "/a/(b)", "template": "{2}"}, "names a group the pattern lacks"),
    ],
)
def test_a_template_without_its_groups_is_refused(rule: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FieldRule.model_validate(rule)


@pytest.mark.parametrize(
    ("shown", "kept"),
    [
        ("  Sold by\n   k***9 ", "Sold by k***9"),  # indentation is markup, not content
        ("\t$1,250.00\r\n", "$1,250.00"),
        ("2\u202f819,50\u00a0₽", "2\u202f819,50\u00a0₽"),  # no-break spaces are the market's
        ("\u00a0Москва\u00a0", "\u00a0Москва\u00a0"),
    ],
)
def test_strip_collapses_markup_whitespace_only(shown: str, kept: str) -> None:
    assert strip(shown, "") == kept
