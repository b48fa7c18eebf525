"""Absurd numbers on saved pages (issue 10, finding 9): a problem on the field, never a value.

"1e999 BTC" used to be stored as 999 BTC, "$1e999" as 1 USD and "-5 BTC" as 5 BTC with no
problem recorded, and a 50-digit price dropped the whole listing. Each case here edits one
value of a saved demo page (fixtures/pages/demo/) and reads it through `read_page` and
`normalise_page`, as a crawl and `reparse` do: the record is kept with the raw text, the
normalised value is left out, and the page's problems name the field, the reason and the text.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from crawler.pages import read_page
from crawler.replay import PAGES_DIR, rebuild_response
from crawler.sources.loader import load_source
from pipelines.normalise_pipeline import normalise_page, records_as_read

if TYPE_CHECKING:
    from pathlib import Path

SOURCE = load_source("demo")
LISTING = PAGES_DIR / "demo" / "listing" / "btc-with-tiers"
VENDOR = PAGES_DIR / "demo" / "vendor" / "vendor-profile"


def _read(case: Path, shown: str, absurd: str) -> tuple[dict[str, Any], list[str]]:
    """The saved page with one shown value replaced, read and normalised."""
    meta = json.loads((case / "inputs" / "response.json").read_text(encoding="utf-8"))
    body = (case / "inputs" / "body.html").read_text(encoding="utf-8")
    assert body.count(shown) == 1, f"{shown!r} must appear once on {case.name}"
    body = body.replace(shown, f">{absurd}<")
    response = rebuild_response(
        meta["url"], meta["status"], meta["headers"], body.encode(), meta["kind"]
    )
    fetched_at = datetime.fromisoformat(meta["fetched_at"])
    item = read_page(SOURCE, response, meta["kind"], fetched_at=fetched_at)
    normalise_page(item, SOURCE)
    ((_, _, content),) = records_as_read(item)  # the record is kept whatever the value
    return content, item.problems


PRICE = ">0.00066900 BTC<"
QUANTITY = ">20 units<"
TIER_PRICE = ">0.00252000 BTC<"
TIER_QUANTITY = ">80 units<"


@pytest.mark.parametrize(
    ("shown", "absurd", "field", "reason"),
    [
        (PRICE, "1e999 BTC", "price", "BTC amount: exponent notation"),
        (PRICE, "$1e999", "price", "USD amount: exponent notation"),
        (PRICE, "-5 BTC", "price", "BTC amount: negative amount"),
        (PRICE, "1" * 50 + " BTC", "price", "BTC amount: 50 digits"),
        (PRICE, "$" + "9" * 50, "price", "USD amount: 50 digits"),
        (PRICE, "250000 BTC", "price", "BTC amount: above the cap of 100,000"),
        (PRICE, "NaN BTC", "price", "no currency"),
        (QUANTITY, "1e999 g", "quantity", "amount: exponent notation"),
        (QUANTITY, "-3 g", "quantity", "amount: negative amount"),
        (QUANTITY, "5000000 kg", "quantity", "total in g: above the cap"),
        (TIER_PRICE, "$-12.50", "tiers[0].price", "USD amount: negative amount"),
        (TIER_QUANTITY, "1" * 30 + " x 10mg", "tiers[0].quantity", "count: 30 digits"),
    ],
)
def test_an_absurd_listing_value_is_a_problem_and_the_listing_is_kept(
    shown: str, absurd: str, field: str, reason: str
) -> None:
    content, problems = _read(LISTING, shown, absurd)
    value = content["tiers"][0][field.split(".")[1]] if "." in field else content[field]
    assert value == {"text": absurd, "error": "unreadable"}
    assert f"field {field}: {reason}" in "\n".join(problems)
    assert repr(absurd)[:100] in "\n".join(problems), "the problem shows the raw text"
    assert content["title"] and content["ships_to"] == ["NL", "CA"], "the rest is kept"
    if field in ("price", "quantity"):
        assert content["price_per_unit"] is None


@pytest.mark.parametrize(
    ("shown", "absurd", "field", "reason"),
    [
        (">4.69/5<", "-4.69/5", "rating", "negative amount"),
        (">4.69/5<", "1e9/5", "rating", "exponent notation"),
        (">4.69/5<", "4.69/1000000", "rating", "scale 1000000 above 100"),
        (">1,675 ratings<", "-1,675 ratings", "feedback_count", "negative amount"),
        (">1,675 ratings<", "1e999 ratings", "feedback_count", "exponent notation"),
        (">1,675 ratings<", "999999999999M ratings", "feedback_count", "above the cap"),
        (">Member since 12 Jan 2025<", "Member since 12 Jan 2099", "joined", "year after"),
    ],
)
def test_an_absurd_vendor_value_is_a_problem_and_the_vendor_is_kept(
    shown: str, absurd: str, field: str, reason: str
) -> None:
    content, problems = _read(VENDOR, shown, absurd)
    assert f"field {field}: " in "\n".join(problems)
    assert reason in "\n".join(p for p in problems if p.startswith(f"field {field}:"))
    assert content["name"] and content["pgp_key"]
    if field == "feedback_count":
        assert (content["feedback_count"], content["feedback_count_text"]) == (None, absurd)
    else:
        assert content[field] == {"text": absurd, "error": "unreadable"}
