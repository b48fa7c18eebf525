"""JSON lines written fast must be the bytes exports always wrote; prefetched reads keep
order, raise the reader's errors and stop with their caller; per-run USD equals per-call.

The reference below is `jsonable` as every export before issue 12 ran it, kept verbatim:
the fast walk and `json_line` are checked against it on a table of values seen in
exports (content, provenance, rates, per-run values) and the odd types around them.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from pipelines.normalise import Price, PriceError, Rate, to_usd
from pipelines.normalise.rates import KnownRate, known_rates, usd_rate
from pipelines.store.export import RunRates, usd_value
from pipelines.store.jsontext import json_line, jsonable, write_jsonl
from pipelines.store.prefetch import prefetched


def reference(value: Any) -> Any:
    """`pipelines/store/export.py::jsonable` before it was made fast."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        text = value.astimezone(UTC).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): reference(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reference(v) for v in value]
    return value


class Money(Decimal):
    """A Decimal subclass: taken by `isinstance`, not by the exact-type fast path."""


class Tags(list[Any]):
    """A list subclass."""


CET = timezone(timedelta(hours=1))
VALUES: list[Any] = [
    {"amount": Decimal("0.00123456"), "currency": "BTC", "text": "0.00123456 BTC"},
    {"amount": Decimal("-0E-8"), "big": Decimal("1E+3"), "nan": Decimal("NaN")},
    {"fetched_at": datetime(2026, 1, 4, 12, 0, 0, 123456, tzinfo=UTC)},
    {"naive": datetime(2026, 1, 4, 12, 0, 0, 999999), "cet": datetime(2026, 3, 1, tzinfo=CET)},
    {"tiers": [{"quantity": Decimal("10"), "price": {"amount": Decimal("0.04")}}], "t": ()},
    {"ships_to": ["DE", "GB"], "category_path": ("Cannabis", "Flower"), "count": 3},
    {"flags": [True, False, None], "ratio": 0.1, "neg": -5, "text": "≈ 0.0021 BTC\u00a0"},
    {3: "int key", "nested": {"deep": [[Decimal("1.5"), [datetime(2026, 1, 1)]]]}},
    {"money": Money("2.50"), "tags": Tags([Money("1"), "x"]), "set": None},
    [Decimal("1"), {"a": datetime(2027, 6, 1, 23, 59, 59, 1000, tzinfo=UTC)}],
    Decimal("7.000"),
    "plain",
    None,
]


@pytest.mark.parametrize("value", VALUES)
def test_jsonable_equals_the_reference(value: Any) -> None:
    fast = jsonable(value)
    assert fast == reference(value)
    assert json.dumps(fast, ensure_ascii=False) == json.dumps(reference(value), ensure_ascii=False)


@pytest.mark.parametrize("value", [v for v in VALUES if isinstance(v, dict)])
def test_json_line_writes_the_same_bytes(value: dict[str, Any]) -> None:
    old = json.dumps(reference(value), ensure_ascii=False, separators=(",", ":"))
    assert json_line(value) == old
    assert json_line(jsonable(value)) == old
    stream = io.StringIO()
    assert write_jsonl([value, jsonable(value)], stream) == 2
    assert stream.getvalue() == f"{old}\n{old}\n"


def test_json_line_refuses_what_json_cannot_write() -> None:
    with pytest.raises(TypeError, match="set"):
        json_line({"s": {1, 2}})


def test_prefetched_keeps_order_across_batches() -> None:
    assert list(prefetched(lambda: iter(range(10_001)), batch=100)) == list(range(10_001))
    assert list(prefetched(lambda: iter([]), batch=3)) == []


def test_prefetched_raises_the_readers_error_after_what_came_before() -> None:
    def read() -> Any:
        yield from range(5)
        raise LookupError("cursor died")

    seen: list[int] = []
    with pytest.raises(LookupError, match="cursor died"):
        for item in prefetched(read, batch=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_prefetched_stops_its_reader_when_the_caller_stops() -> None:
    read_so_far: list[int] = []

    def read() -> Any:
        for i in range(1_000_000):
            read_so_far.append(i)
            yield i

    stream = prefetched(read, batch=10)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()  # joins the thread: it must have stopped well short of the end
    assert len(read_so_far) < 100


RATES = {
    "BTC": {
        "value": Decimal("67012.50"),
        "quote": "USD",
        "source": "market",
        "text": "1 BTC = $67,012.50",
    },
    "table:XMR/USD": {"value": Decimal("162.3"), "base": "XMR", "source": "table"},
}
HINT = KnownRate("LTC", "USD", Decimal("80.5"), "hint", "hint '≈ 1 LTC' beside '$80.50'")


@pytest.mark.parametrize(
    ("amount", "currency", "hint"),
    [
        ("0.0045", "BTC", None),
        ("0.0045", "btc", None),
        ("1.25", "XMR", None),
        ("150.00", "USD", None),
        ("2", "LTC", HINT),
        ("2", "LTC", None),
        ("1E+30", "BTC", None),
        ("3", "EUR", None),
    ],
)
def test_run_rates_equal_one_conversion_per_call(
    amount: str, currency: str, hint: KnownRate | None
) -> None:
    rates = RunRates(RATES, "mkt:000001")
    expected = usd_per_call(Decimal(amount), currency, RATES, "mkt:000001", hint)
    for _ in range(2):  # the second answer comes from the run's found paths
        assert rates.usd(Decimal(amount), currency, hint) == expected
    assert usd_value(Decimal(amount), currency, RATES, "mkt:000001", hint=hint) == expected


def usd_per_call(
    amount: Decimal, currency: str, rates: Any, run_id: str, hint: KnownRate | None
) -> dict[str, Any] | None:
    """`usd_value` before issue 12: the rates read and the path found on every call."""
    code = currency.upper()
    known = known_rates(rates) + ([hint] if hint is not None else [])
    found = usd_rate(code, known)
    if found is None:
        return None
    rate = Rate(code, "USD", found.value, found.provenance)
    try:
        value = to_usd(
            Price(amount, code, f"{amount} {code}"),
            {code: rate},
            source=found.source,
            path=found.path,
            provenance=found.provenance,
        )
    except PriceError:
        return None
    usd: dict[str, Any] = {"amount": value.amount, "rate": value.rate, "rate_source": value.source}
    if code != "USD":
        usd.update(rate_path=value.path, rate_provenance=value.provenance)
    return {**usd, "run": run_id}
