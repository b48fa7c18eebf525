"""The stable way out: one JSON line per run header, listing, vendor and feedback entry."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipelines.normalise import Price, PriceError, Rate, to_usd
from pipelines.normalise.rates import KnownRate, hint_rate, known_rates, usd_rate
from pipelines.store.displayed import displayed_prices, per_run_values
from pipelines.store.queries import feedback, get_run, latest_run, observed
from pipelines.store.rereads import reading_parser

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import TextIO

    from pymongo.database import Database

logger = logging.getLogger(__name__)

RESERVED = ("kind", "key", "version", "provenance", "first_seen_run")


def export_run(
    db: Database, source: str, run_id: str | None = None, *, parser: str | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the run header, then its listings, vendors and feedback, JSON-ready.

    Default run: the latest complete or partial run. USD values come from the rates the
    run recorded at fetch time, so they are what the market showed that day. A reparsed
    run is read by its newest parser unless `parser` names one (see `observed`).
    """
    run = get_run(db, run_id) if run_id is not None else latest_run(db, source)
    if run is None or run["source"] != source:
        raise KeyError(f"no run {run_id or '(latest complete/partial)'} for source {source!r}")
    rates = run.get("rates") or {}
    reader = reading_parser(db, run["_id"], parser)  # refuses an unknown parser up front
    yield jsonable(
        {
            "kind": "run",
            "run": run["_id"],
            "source": source,
            "seq": run["seq"],
            "status": run["status"],
            "parser_version": run.get("parser_version"),
            "started_at": run.get("started_at"),
            "finished_at": run.get("finished_at"),
            "counts": run.get("counts", {}),
            "reasons": run.get("reasons", []),
            "rates": rates,
            **({"read_by": reader} if reader is not None else {}),
        }
    )
    for kind in ("listing", "vendor"):
        shown = displayed_prices(db, run["_id"], kind)
        for entity in observed(db, run["_id"], kind, parser=parser):
            displayed = shown.get(entity["key"])
            content = run_content(entity["content"], displayed, kind, rates, run["_id"])
            if displayed and "price_hint" in displayed:  # what this run displayed beside it
                content["price_hint"] = {
                    k: v for k, v in displayed["price_hint"].items() if k != "of" and v is not None
                }
            line: dict[str, Any] = {
                "kind": kind,
                "key": entity["key"],
                "version": entity["v"],
                "provenance": entity["provenance"],
                "first_seen_run": entity["first_seen_run"],
            }
            for name, value in content.items():
                line[f"content_{name}" if name in RESERVED else name] = value
            yield jsonable(line)
    for entry in feedback(db, source, run_id=run["_id"]):
        entry.pop("source", None)
        entry["id"] = entry.pop("_id")
        yield jsonable({"kind": "feedback", **entry})


def run_content(
    content: Mapping[str, Any],
    displayed: Mapping[str, Any] | None,
    kind: str,
    rates: Mapping[str, Any],
    run_id: str,
) -> dict[str, Any]:
    """An entity as the run showed it: its version's content, the values kept per run
    (pipelines/store/displayed.py) and, for a listing, USD at the run's rates or its hint."""
    out = {**content, **per_run_values(displayed)}
    return add_usd(out, rates, run_id, hint=hint_of(displayed)) if kind == "listing" else out


def add_usd(
    content: dict[str, Any],
    rates: Mapping[str, Any],
    run_id: str,
    *,
    hint: KnownRate | None = None,
) -> dict[str, Any]:
    """Add `usd` next to the listing's `price` and next to each tier's `price`."""
    out = _with_usd(content, rates, run_id, hint)
    tiers = out.get("tiers")
    if isinstance(tiers, list):
        out["tiers"] = [
            _with_usd(t, rates, run_id, hint) if isinstance(t, dict) else t for t in tiers
        ]
    return out


def _with_usd(
    holder: dict[str, Any], rates: Mapping[str, Any], run_id: str, hint: KnownRate | None
) -> dict[str, Any]:
    price = holder.get("price")
    if not isinstance(price, dict) or not isinstance(price.get("amount"), Decimal):
        return holder
    currency = str(price.get("currency", ""))
    return {**holder, "usd": usd_value(price["amount"], currency, rates, run_id, hint=hint)}


def hint_of(displayed: Mapping[str, Any] | None) -> KnownRate | None:
    """The rate a listing's displayed second price implies, with the page it was shown on."""
    hint = (displayed or {}).get("price_hint")
    if not isinstance(hint, dict) or not isinstance(hint.get("of"), dict):
        return None
    return hint_rate(hint["of"], hint, str((displayed or {}).get("url") or ""))


def usd_value(
    amount: Decimal,
    currency: str,
    rates: Mapping[str, Any],
    run_id: str,
    *,
    hint: KnownRate | None = None,
) -> dict[str, Any] | None:
    """USD value at the run's recorded rates, or None when none leads to USD.

    The market's rates (its page lines and rates page) are read either way round and
    crossed; then the listing's `hint`; then the project rate table's rates copied onto
    the run at its close (pipelines/normalise/rates.py). The value says which, by which
    path, from where (`rate_source`, `rate_path`, `rate_provenance`).
    """
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


def jsonable(value: Any) -> Any:
    """Decimals as strings, datetimes as ISO 8601 UTC with `Z`, recursively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        text = value.astimezone(UTC).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def write_jsonl(records: Iterable[Mapping[str, Any]], stream: TextIO) -> int:
    """Write one JSON object per line; return the number of lines."""
    count = 0
    for record in records:
        stream.write(json.dumps(jsonable(record), ensure_ascii=False, separators=(",", ":")))
        stream.write("\n")
        count += 1
    return count
