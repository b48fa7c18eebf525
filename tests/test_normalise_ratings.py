"""Vendor and listing ratings, and rating counts, as market pages print them.

Markets rate out of 5 ("4.87/5", "4.87 / 5.00", "4.9 ★"), out of 10 ("9.5/10"), in percent
of positive feedback ("98%", "Positive: 99.2 %"), in star glyph runs ("★★★★☆", "⭐⭐⭐⭐⭐"),
with German comma decimals ("4,9 von 5"). Counts sit beside them: "1,234 ratings",
"(1.234)", "1 234", and rounded "12k".
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.normalise import Rating, RatingError, parse_count, parse_rating

D = Decimal


@pytest.mark.parametrize(
    ("text", "scale", "value", "raw", "shown_scale"),
    [
        ("4.87/5", None, D("0.9740"), D("4.87"), D("5")),
        ("4.87 / 5.00", None, D("0.9740"), D("4.87"), D("5.00")),
        ("4,87/5", None, D("0.9740"), D("4.87"), D("5")),
        ("5/5", None, D("1.0000"), D("5"), D("5")),
        ("0/5", None, D("0.0000"), D("0"), D("5")),
        ("9.5/10", None, D("0.9500"), D("9.5"), D("10")),
        ("4.9 out of 5", None, D("0.9800"), D("4.9"), D("5")),
        # the grid fixture market: reviews "4.0 out of 5", vendors "★ 4.50"
        ("4.0 out of 5", None, D("0.8000"), D("4.0"), D("5")),
        ("★ 4.50", None, D("0.9000"), D("4.50"), D("5")),
        ("4,9 von 5", None, D("0.9800"), D("4.9"), D("5")),
        ("Rating: 4.87/5 (1,234 reviews)", None, D("0.9740"), D("4.87"), D("5")),
        ("98%", None, D("0.9800"), D("98"), D("100")),
        ("98.5 %", None, D("0.9850"), D("98.5"), D("100")),
        ("98,5 %", None, D("0.9850"), D("98.5"), D("100")),
        ("Positive feedback: 99.2%", None, D("0.9920"), D("99.2"), D("100")),
        ("100%", None, D("1.0000"), D("100"), D("100")),
        ("4.9 ★", None, D("0.9800"), D("4.9"), D("5")),
        ("★ 4.9", None, D("0.9800"), D("4.9"), D("5")),
        ("4.9 stars", None, D("0.9800"), D("4.9"), D("5")),
        ("9.1 ★", D("10"), D("0.9100"), D("9.1"), D("10")),
        ("★★★★☆", None, D("0.8000"), D("4"), D("5")),
        ("★★★★★", None, D("1.0000"), D("5"), D("5")),
        ("★☆☆☆☆", None, D("0.2000"), D("1"), D("5")),
        ("⭐⭐⭐⭐⭐", None, D("1.0000"), D("5"), D("5")),
        ("★★★★½", None, D("0.9000"), D("4.5"), D("5")),
        ("★★★", D("5"), D("0.6000"), D("3"), D("5")),
        ("4.9", D("5"), D("0.9800"), D("4.9"), D("5")),
        ("4.666", D("5"), D("0.9332"), D("4.666"), D("5")),
        ("2/3", None, D("0.6667"), D("2"), D("3")),
        # A value that states its scale is read by what it states, whatever the source's
        # default: "Trust 94%" on a market whose bare numbers are out of 5.
        ("Trust 94%", D("5"), D("0.9400"), D("94"), D("100")),
        ("4.8/5", D("100"), D("0.9600"), D("4.8"), D("5")),
        ("★★★★☆", D("10"), D("0.8000"), D("4"), D("5")),
        ("4 из 5", None, D("0.8000"), D("4"), D("5")),
        ("4,5 sur 5", None, D("0.9000"), D("4.5"), D("5")),
        ("8", D("10"), D("0.8000"), D("8"), D("10")),
    ],
)
def test_parse_rating(
    text: str,
    scale: Decimal | None,
    value: Decimal,
    raw: Decimal,
    shown_scale: Decimal,
) -> None:
    rating = parse_rating(text, scale=scale)
    assert rating == Rating(value, raw, shown_scale, text)
    assert rating.value.as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("text", "scale", "reason"),
    [
        ("", None, "no rating"),
        ("n/a", None, "no rating"),
        ("No ratings yet", None, "no rating"),
        ("4.9", None, "no scale"),
        ("6/5", None, "outside"),
        ("101%", None, "outside"),
        ("5/0", None, "no usable scale"),
        ("4.9", D("0"), "no usable scale"),
        # absurd numbers (issue 10): "-4/5" and "-5%" once read as 4/5 and 5%
        ("-4/5", None, "negative amount"),
        ("-5%", None, "negative amount"),
        ("1e3 stars", None, "exponent notation"),
        ("4.5/1e9", None, "exponent notation"),
        ("9" * 50 + "%", None, "50 digits"),
        ("4/1000000", None, "scale 1000000 above 100"),
        ("★" * 200, None, "scale 200 above 100"),
    ],
)
def test_parse_rating_fails(text: str, scale: Decimal | None, reason: str) -> None:
    with pytest.raises(RatingError, match=reason) as info:
        parse_rating(text, scale=scale)
    assert info.value.text == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234 ratings", 1234),
        ("(1.234)", 1234),
        ("1 234", 1234),
        ("1\u00a0234 Bewertungen", 1234),
        ("1,234,567 views", 1234567),
        ("(87)", 87),
        ("87 reviews", 87),
        ("0", 0),
        ("5 sales", 5),
        ("12k", 12000),
        ("12K sold", 12000),
        ("1.2k", 1200),
        ("1,2k", 1200),
        ("3.4M", 3400000),
    ],
)
def test_parse_count(text: str, expected: int) -> None:
    assert parse_count(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no count"),
        ("none", "no count"),
        ("1.5", "fraction"),
        ("(1,5)", "fraction"),
        ("1.2345k", "fraction"),
        # absurd numbers (issue 10): once read as 5, 999 and a 50-digit count
        ("-5 ratings", "negative amount"),
        ("1e999", "exponent notation"),
        ("1.2e3k", "exponent notation"),
        ("9" * 50, "50 digits"),
        ("999999999999M sold", "count: above the cap of 1,000,000,000"),
        ("1000000001", "count: above the cap"),
    ],
)
def test_parse_count_fails(text: str, reason: str) -> None:
    with pytest.raises(RatingError, match=reason) as info:
        parse_count(text)
    assert info.value.text == text


def test_each_rating_field_has_its_own_default_scale() -> None:
    """Vendors as a bare trust percentage, reviews as a bare number out of 5."""
    from datetime import UTC, datetime

    from crawler.sources.model import NormaliseHints
    from pipelines.entities import Reader

    hints = NormaliseHints(rating_scale={"vendor": 100, "feedback": 5})
    reader = Reader(hints, datetime(2026, 3, 1, tzinfo=UTC))
    vendor, review = reader.rating("rating", "94"), reader.rating("feedback[0].rating", "4")
    assert vendor is not None and (vendor.value, vendor.scale) == (D("0.9400"), D(100))
    assert review is not None and (review.value, review.scale) == (D("0.8000"), D(5))
    assert NormaliseHints(rating_scale=5).scale_for("vendor") == 5
