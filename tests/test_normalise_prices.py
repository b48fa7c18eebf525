"""Price, rate-banner and USD-conversion strings as dark markets print them.

Rows follow the listing conventions met on crypto-first markets: prices shown in BTC or XMR
first with up to eight decimals, a fiat "≈ $" approximation beside them, European comma
decimals ("12,50 €", "1.234,56 €"), ISO codes before or after the number, crypto symbols
(₿, Ƀ, ɱ) and names, and the "1 BTC = $…" / "BTC/USD …" rate banners in page headers.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.normalise import (
    NormaliseError,
    Price,
    PriceError,
    Rate,
    UsdValue,
    parse_price,
    parse_rate,
    to_usd,
)

D = Decimal


@pytest.mark.parametrize(
    ("text", "kwargs", "amount", "currency"),
    [
        # crypto, ticker after
        ("0.00450000 BTC", {}, D("0.00450000"), "BTC"),
        # nothing to pay: shipping options and samples say so in words
        ("Free", {}, D(0), "USD"),
        ("FREE SHIPPING!", {}, D(0), "USD"),
        ("Kostenlos", {"default_currency": "EUR"}, D(0), "EUR"),
        ("Бесплатно", {"default_currency": "RUB"}, D(0), "RUB"),
        ("0.0045 BTC", {}, D("0.0045"), "BTC"),
        ("0.045 BTC", {}, D("0.045"), "BTC"),
        ("1.234 BTC", {}, D("1.234"), "BTC"),
        ("1.857000 XMR", {}, D("1.857000"), "XMR"),
        ("0.25 LTC", {}, D("0.25"), "LTC"),
        ("0.12 ETH", {}, D("0.12"), "ETH"),
        ("0.5 BCH", {}, D("0.5"), "BCH"),
        ("3.1 ZEC", {}, D("3.1"), "ZEC"),
        ("4.2 DASH", {}, D("4.2"), "DASH"),
        ("0.0045 btc", {}, D("0.0045"), "BTC"),
        ("0.0045 XBT", {}, D("0.0045"), "BTC"),
        ("0.0045BTC", {}, D("0.0045"), "BTC"),
        # crypto, ticker before and symbols
        ("BTC 0.0045", {}, D("0.0045"), "BTC"),
        ("XMR: 1.857", {}, D("1.857"), "XMR"),
        ("₿0.0045", {}, D("0.0045"), "BTC"),
        ("Ƀ 0.0045", {}, D("0.0045"), "BTC"),
        ("ɱ1.2", {}, D("1.2"), "XMR"),
        ("0.045 bitcoin", {}, D("0.045"), "BTC"),
        ("2 Monero", {}, D("2"), "XMR"),
        ("2 bitcoin cash", {}, D("2"), "BCH"),
        # crypto with comma decimals
        ("0,0045 BTC", {}, D("0.0045"), "BTC"),
        ("0,0045 BTC", {"decimal_separator": ","}, D("0.0045"), "BTC"),
        ("1,857 XMR", {"decimal_separator": ","}, D("1.857"), "XMR"),
        # crypto first, fiat approximation beside it: the first tagged amount wins
        ("Price: 0.00123 BTC (≈ $82.40)", {}, D("0.00123"), "BTC"),
        ("0.00123 BTC ≈ 82,40 €", {}, D("0.00123"), "BTC"),
        ("≈ $82.40 (0.00123 BTC)", {}, D("82.40"), "USD"),
        ("$82.40 / 0.00123 BTC", {}, D("82.40"), "USD"),
        # XMR first, dollar approximation beside it (the grid fixture market's tier prices)
        ("0.781 XMR (≈ $133.90)", {"default_currency": "XMR"}, D("0.781"), "XMR"),
        ("7.73 XMR (≈ $1,325.31)", {"decimal_separator": "."}, D("7.73"), "XMR"),
        ("120 XMR", {"default_currency": "XMR"}, D("120"), "XMR"),
        # fiat
        ("≈ $301.50", {}, D("301.50"), "USD"),
        ("~$301.50", {}, D("301.50"), "USD"),
        ("$1,234.56", {}, D("1234.56"), "USD"),
        ("€12,50", {}, D("12.50"), "EUR"),
        ("12,50 EUR", {}, D("12.50"), "EUR"),
        ("12,50 €", {}, D("12.50"), "EUR"),
        ("1.234,56 €", {}, D("1234.56"), "EUR"),
        # fiat first, crypto equivalent second (the classic fixture market's price cells)
        ("1.234,50 € ≈ 0,01842 BTC", {"decimal_separator": ","}, D("1234.50"), "EUR"),
        ("2.495,50 €", {"default_currency": "EUR", "decimal_separator": ","}, D("2495.50"), "EUR"),
        ("36,50 € ≈ 0,00054 BTC ≈ 0,225 XMR", {}, D("36.50"), "EUR"),
        ("USD 45", {}, D("45"), "USD"),
        ("US$ 45", {}, D("45"), "USD"),
        ("45 usd", {}, D("45"), "USD"),
        ("usd 45.5", {}, D("45.5"), "USD"),
        ("45 gbp", {}, D("45"), "GBP"),
        ("£3.50", {}, D("3.50"), "GBP"),
        ("CHF 120.00", {}, D("120.00"), "CHF"),
        ("AU$ 30", {}, D("30"), "AUD"),
        ("1 234,56 zł", {}, D("1234.56"), "PLN"),
        ("Price: USD 1,200.00 / piece", {}, D("1200.00"), "USD"),
        # default currency when the page shows none
        ("1.857000", {"default_currency": "XMR"}, D("1.857000"), "XMR"),
        ("0.045", {"default_currency": "BTC"}, D("0.045"), "BTC"),
        ("45.00", {"default_currency": "USD"}, D("45.00"), "USD"),
        ("12,50", {"default_currency": "EUR"}, D("12.50"), "EUR"),
        ("0.5 BTC", {"default_currency": "XMR"}, D("0.5"), "BTC"),
        # dashes that are no minus sign, and the largest amounts read (issue 10)
        ("Offer - 0.5 BTC", {}, D("0.5"), "BTC"),
        ("Bundle-5 BTC", {}, D("5"), "BTC"),
        ("100000 BTC", {}, D("100000"), "BTC"),
        ("$1,000,000,000", {}, D("1000000000"), "USD"),
    ],
)
def test_parse_price(text: str, kwargs: dict[str, str], amount: Decimal, currency: str) -> None:
    price = parse_price(text, **kwargs)
    assert price == Price(amount, currency, text)
    assert str(price.amount) == str(amount)  # precision as shown, trailing zeros kept


@pytest.mark.parametrize(
    ("text", "kwargs", "reason"),
    [
        ("", {}, "no currency"),
        ("Contact vendor", {}, "no currency"),
        ("45.00", {}, "no currency"),
        ("BTC", {}, "no currency"),
        ("$", {}, "no amount"),
        ("12 kr", {}, "unknown currency"),
        ("top 10 all 45", {}, "no currency"),  # TOP and ALL are ISO codes, not in lower case
        # absurd numbers (issue 10): once read as 999 BTC, 1 USD and 5 BTC with no problem
        ("1e999 BTC", {}, "BTC amount: exponent notation"),
        ("$1e999", {}, "USD amount: exponent notation"),
        ("1.5E+3 XMR", {}, "XMR amount: exponent notation"),
        ("€1.5e3", {}, "EUR amount: exponent notation"),
        ("-5 BTC", {}, "BTC amount: negative amount"),
        ("BTC -0.5", {"default_currency": "BTC"}, "BTC amount: negative amount"),
        ("-$5", {}, "USD amount: negative amount"),
        ("$-5", {}, "USD amount: negative amount"),
        ("USD -10", {}, "USD amount: negative amount"),
        ("€ -3", {}, "EUR amount: negative amount"),
        ("−2,50 €", {}, "EUR amount: negative amount"),  # U+2212 minus sign
        ("-45.00", {"default_currency": "USD"}, "USD amount: negative amount"),
        ("1" * 50 + " BTC", {}, "BTC amount: 50 digits"),  # dropped the whole listing
        ("$" + "9" * 50, {}, "USD amount: 50 digits"),
        ("0.0000000000000000000000001 BTC", {}, "BTC amount: 26 digits"),
        ("250000 BTC", {}, "BTC amount: above the cap of 100,000"),
        ("$1,000,000,000,000", {}, "USD amount: above the cap of 1,000,000,000"),
        ("NaN BTC", {}, "no currency"),
        ("$inf", {}, "no amount"),
        ("∞ BTC", {}, "no currency"),
    ],
)
def test_parse_price_fails(text: str, kwargs: dict[str, str], reason: str) -> None:
    with pytest.raises(PriceError, match=reason) as info:
        parse_price(text, **kwargs)
    assert info.value.text == text
    assert isinstance(info.value, NormaliseError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "base", "quote", "value"),
    [
        ("1 BTC = $67,012.50", "BTC", "USD", D("67012.50")),
        ("1 BTC = 67,012.50 USD", "BTC", "USD", D("67012.50")),
        ("1 BTC ≈ 67012.50 USD", "BTC", "USD", D("67012.50")),
        ("BTC/USD 67012.50", "BTC", "USD", D("67012.50")),
        ("BTC/USD: 67012.50", "BTC", "USD", D("67012.50")),
        ("XMR/EUR 150,20", "XMR", "EUR", D("150.20")),
        ("1 XMR = 162,30 €", "XMR", "EUR", D("162.30")),
        ("1 BTC = 67.012,50 €", "BTC", "EUR", D("67012.50")),
        ("1 € = 1,09 $", "EUR", "USD", D("1.09")),
        ("1 XMR = $162.30", "XMR", "USD", D("162.30")),
        ("XMR: $162.30", "XMR", "USD", D("162.30")),
        ("BTC = $67,012.50", "BTC", "USD", D("67012.50")),
        ("0.5 BTC = $30,000", "BTC", "USD", D("60000")),
        ("1 LTC = $84.10", "LTC", "USD", D("84.10")),
    ],
)
def test_parse_rate(text: str, base: str, quote: str, value: Decimal) -> None:
    assert parse_rate(text) == Rate(base, quote, value, text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Bitcoin price unavailable",
        "1 BTC = ",
        "= $67,012.50",
        "FOO/BAR 12",
        "0 BTC = $5",
        "1 BTC = $0",  # a zero rate would make every price worth nothing
        "1 BTC = $-67,012.50",
        "1 BTC = $6.7e4",
        "BTC/USD 1" + "0" * 30,
        "0.000000000000000001 BTC = $999,999,999",  # 1e27 dollars a bitcoin
    ],
)
def test_parse_rate_fails(text: str) -> None:
    with pytest.raises(PriceError) as info:
        parse_rate(text)
    assert info.value.text == text


RATES = {
    "BTC": Rate("BTC", "USD", D("67012.50"), "1 BTC = $67,012.50"),
    "XMR": Rate("XMR", "USD", D("162.30"), "1 XMR = $162.30"),
    "EUR": Rate("EUR", "USD", D("1.0850"), "EUR/USD 1.0850"),
    "LTC": Rate("LTC", "EUR", D("80"), "1 LTC = 80 €"),
}


@pytest.mark.parametrize(
    ("text", "amount", "rate", "rate_currency"),
    [
        ("0.0045 BTC", D("301.56"), D("67012.50"), "BTC"),
        ("0.00450000 BTC", D("301.56"), D("67012.50"), "BTC"),
        ("1.857000 XMR", D("301.39"), D("162.30"), "XMR"),
        ("12,50 €", D("13.56"), D("1.0850"), "EUR"),
        ("$301.50", D("301.50"), D("1"), "USD"),
        ("USD 45", D("45.00"), D("1"), "USD"),
    ],
)
def test_to_usd(text: str, amount: Decimal, rate: Decimal, rate_currency: str) -> None:
    value = to_usd(parse_price(text), RATES, source="http://market.onion/ 2026-01-15")
    assert value == UsdValue(amount, rate, rate_currency, "http://market.onion/ 2026-01-15")
    assert value.amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (D("301.505"), "USD", D("301.50")),  # half-even: ties go to the even cent
        (D("301.515"), "USD", D("301.52")),
        (D("0.000001"), "BTC", D("0.07")),  # 0.0670125
        (D("0.0000015"), "BTC", D("0.10")),  # 0.100518750
        (D("1"), "XMR", D("162.30")),
    ],
)
def test_to_usd_rounds_half_even(amount: Decimal, currency: str, expected: Decimal) -> None:
    price = Price(amount, currency, f"{amount} {currency}")
    assert to_usd(price, RATES, source="test").amount == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [("0.25 ETH", "no rate for ETH"), ("0.25 LTC", "need LTC/USD")],
)
def test_to_usd_fails(text: str, reason: str) -> None:
    with pytest.raises(PriceError, match=reason):
        to_usd(parse_price(text), RATES, source="test")


def test_to_usd_refuses_a_value_past_the_usd_cap() -> None:
    """100,000 BTC is a readable price, but not at a rate of a billion dollars a bitcoin."""
    rates = {"BTC": Rate("BTC", "USD", D("1e9"), "1 BTC = $1,000,000,000")}
    with pytest.raises(PriceError, match="USD value above the cap"):
        to_usd(parse_price("100000 BTC"), rates, source="test")
