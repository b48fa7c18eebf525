"""Search terms: folding, word splitting and facets, one row per case met on the markets."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.store.tokens import facet, fold, listing_tokens, query_terms, vendor_tokens, words

WORDS = [
    ("Fresh Siquelzo Tundra Kush - 1 oz", ["fresh", "siquelzo", "tundra", "kush", "1", "oz"]),
    ("AAA Amber Heron Caps - 100 x 20mg", ["aaa", "amber", "heron", "caps", "100", "20mg"]),
    ("Crème brûlée ÉCSTASY", ["creme", "brulee", "ecstasy"]),
    ("Straße", ["strasse"]),
    ("Cocaïne 90% pure!!!", ["cocaine", "90", "pure"]),
    ("kush's best-seller_2024", ["kush", "best", "seller", "2024"]),
    ("3,5g / 0.5 g", ["3", "5g", "0", "5"]),
    ("a b c 7", ["7"]),
    ("ＦＵＬＬＷＩＤＴＨ", ["fullwidth"]),
    ("Tabletten (50 Stück)", ["tabletten", "50", "stuck"]),
    ("", []),
    (None, []),
]


@pytest.mark.parametrize(("text", "expected"), WORDS)
def test_words(text: str | None, expected: list[str]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Kush kush KUSH", ["kush"]), ("Tundra kush", ["tundra", "kush"]), ("  ", [])],
)
def test_query_terms_are_distinct_words_in_order(text: str, expected: list[str]) -> None:
    assert query_terms(text) == expected


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("vendor", "Rapid-Fjord", "vendor=rapid-fjord"),
        ("category", "Prescription  Drugs", "category=prescription drugs"),
        ("category", "Psychédéliques", "category=psychedeliques"),
        ("from", "NL", "from=nl"),
        ("to", "*", "to=*"),
    ],
)
def test_facets(name: str, value: str, expected: str) -> None:
    assert facet(name, value) == expected


def test_unknown_facet_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown search facet"):
        facet("colour", "red")


def test_fold_is_idempotent() -> None:
    assert fold(fold("Ça Été ß")) == fold("Ça Été ß") == "ca ete ss"


def test_listing_tokens_hold_words_and_facets_once() -> None:
    content = {
        "title": "Fresh Kush - 1 oz",
        "description": "Fresh from Amsterdam.\n\nKush again.",
        "category_path": ["Cannabis", "Flower"],
        "vendor": "lucid-thistle",
        "price": {"amount": Decimal("0.1"), "currency": "BTC", "text": "0.1 BTC"},
        "ships_from": "NL",
        "ships_to": ["DE", "*"],
    }
    tokens = listing_tokens(content)
    assert len(tokens) == len(set(tokens))
    for term in ("fresh", "kush", "amsterdam", "cannabis", "flower", "lucid", "thistle"):
        assert term in tokens
    for term in ("category=cannabis", "category=flower", "vendor=lucid-thistle"):
        assert term in tokens
    assert {"from=nl", "to=de", "to=*"} <= set(tokens)
    assert "0" not in tokens and "btc" not in tokens  # prices are filtered in USD, not words


def test_listing_tokens_survive_missing_fields() -> None:
    assert listing_tokens({"title": None, "category_path": [], "ships_to": []}) == []


def test_vendor_tokens() -> None:
    tokens = vendor_tokens(
        "rapid-fjord", {"name": "RapidFjord", "bio": "Since 2019.", "ships_to": ["*"]}
    )
    assert tokens == ["rapidfjord", "rapid", "fjord", "since", "2019", "vendor=rapid-fjord", "to=*"]


def test_docstring_examples() -> None:
    import doctest

    import pipelines.store.tokens

    assert doctest.testmod(pipelines.store.tokens).failed == 0
