"""The JSONL export: header first, flattened content, USD at the run's recorded rates."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from pipelines.store.export import export_run, write_jsonl
from pipelines.store.model import EntityObservation, Provenance

if TYPE_CHECKING:
    from pymongo.database import Database

    from pipelines.store.archive import Archive

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def price(amount: str, currency: str) -> dict[str, object]:
    return {"amount": Decimal(amount), "currency": currency, "text": f"{amount} {currency}"}


def listing(key: str) -> EntityObservation:
    content = {
        "title": "Product",
        "price": price("0.0045", "BTC"),
        "tiers": [{"quantity": Decimal("10"), "price": price("0.04", "BTC")}],
        "posted": T0,
    }
    return EntityObservation(key, content, Provenance(f"http://m.onion/{key}", "ef" * 32, T0, "p1"))


def test_export_lines(archive: Archive, db: Database) -> None:
    run = archive.open_run("mkt", parser_version="p1", started_at=T0)
    archive.record_rates(
        run, {"BTC": {"value": Decimal("67012.50"), "quote": "USD", "source": "market"}}
    )
    archive.record_entities(run, "listing", [listing("1")])
    vendor = EntityObservation(
        "v", {"name": "V"}, Provenance("http://m.onion/v", "00" * 32, T0, "p1")
    )
    archive.record_entities(run, "vendor", [vendor])
    feedback = {
        "rating": 5,
        "text": "ok",
        "buyer": "b",
        "date_earliest": T0 - timedelta(days=7),
        "date_latest": T0,
    }
    archive.record_feedback(run, "1", [feedback], vendor.provenance)
    archive.close_run(run, status="partial", counts={"expected": 2}, reasons=["page 2 timed out"])

    buffer = io.StringIO()
    assert write_jsonl(export_run(db, "mkt"), buffer) == 4
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [line["kind"] for line in lines] == ["run", "listing", "vendor", "feedback"]
    assert all(next(iter(line)) == "kind" for line in lines)
    header, item, seller, entry = lines
    assert (header["run"], header["status"]) == (run.run_id, "partial")
    assert header["rates"]["BTC"]["value"] == "67012.50"
    assert header["counts"]["expected"] == 2
    assert (item["key"], item["version"], item["title"]) == ("1", 1, "Product")
    assert item["price"]["amount"] == "0.0045"
    assert item["usd"] == {
        "amount": "301.56",
        "rate": "67012.50",
        "rate_source": "market",
        "rate_path": "BTC→USD",
        "rate_provenance": "page line",
        "run": run.run_id,
    }
    assert item["tiers"][0]["usd"]["amount"] == "2680.50"
    assert item["posted"] == "2026-03-01T12:00:00.000Z"
    assert item["provenance"]["fetched_at"].endswith("Z")
    assert seller["name"] == "V"
    assert (entry["listing_key"], entry["first_run"]) == ("1", run.run_id)
