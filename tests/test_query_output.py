"""`emit_streamed` prints what `emit` prints, row by row: the same JSON document, CSV and
table, for rows and for none (a generator that is empty is still `[]`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from crawler.commands.query import LISTING_COLUMNS, emit, emit_streamed
from pipelines.store.jsontext import jsonable

if TYPE_CHECKING:
    from collections.abc import Iterator

DOCUMENT = {
    "source": "demo",
    "kind": "listing",
    "run": {"run": "demo:000002", "seq": 2, "started_at": datetime(2026, 3, 2, tzinfo=UTC)},
}
ROWS = [
    {
        "key": "l10001",
        "version": 2,
        "observed": True,
        "content": {
            "title": "Crème de la kush, 3.5 g",
            "vendor": "rustic-dune",
            "price": {"amount": Decimal("0.00041"), "currency": "BTC", "text": "0.00041 BTC"},
            "usd": {"amount": Decimal("27.4751"), "rate": Decimal("67012.5")},
        },
    },
    {"key": "l10002", "version": 1, "observed": False, "content": {"title": None}},
]


def _once(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from rows


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
@pytest.mark.parametrize("rows", [ROWS, []], ids=["rows", "none"])
def test_streamed_output_is_the_held_output(
    fmt: str, rows: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    emit(fmt, {**DOCUMENT, "entities": rows}, rows, LISTING_COLUMNS, f"demo: {len(rows)}")
    held = capsys.readouterr().out
    emit_streamed(fmt, DOCUMENT, "entities", _once(rows), LISTING_COLUMNS, "demo")
    assert capsys.readouterr().out == held
    if fmt == "json":
        assert json.loads(held) == jsonable({**DOCUMENT, "entities": rows})
