"""The stable way out: one JSON line per run header, listing, vendor and feedback entry."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipelines.normalise import Price, PriceError, Rate, to_usd
from pipelines.normalise.rates import KnownRate, UsdRate, hint_rate, known_rates, usd_rate
from pipelines.store.displayed import per_run_values
from pipelines.store.jsontext import jsonable, write_jsonl
from pipelines.store.keyed_merge import CHUNK_BYTES
from pipelines.store.queries import feedback, get_run, latest_run
from pipelines.store.rereads import reading_parser
from pipelines.store.run_entities import entities_in_run

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from pymongo.database import Database

logger = logging.getLogger(__name__)

__all__ = ["RunRates", "export_run", "jsonable", "run_content", "usd_value", "write_jsonl"]

RESERVED = ("kind", "key", "version", "provenance", "first_seen_run")


def export_run(
    db: Database,
    source: str,
    run_id: str | None = None,
    *,
    parser: str | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[dict[str, Any]]:
    """Yield the run header, then its listings, vendors and feedback, JSON-ready.

    Default run: the latest complete or partial run. USD values come from the rates the
    run recorded at fetch time, so they are what the market showed that day. A reparsed
    run is read by its newest parser unless `parser` names one (see `observed`).
    Memory stays flat whatever the run's size: entities are sorted by key in chunks of
    `chunk_bytes`, spilled to temporary files (run_entities.py).
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
    converter = RunRates(rates, run["_id"])  # each currency's way to USD, found once
    for kind in ("listing", "vendor"):
        joined = entities_in_run(db, run, kind, reader=reader, shown=True, chunk_bytes=chunk_bytes)
        for entity, displayed in joined:
            content = run_content(entity["content"], displayed, kind, converter, run["_id"])
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
    rates: Mapping[str, Any] | RunRates,
    run_id: str,
) -> dict[str, Any]:
    """An entity as the run showed it: its version's content, the values kept per run
    (pipelines/store/displayed.py) and, for a listing, USD at the run's rates or its hint.

    Pass a `RunRates` of the run when converting many entities: the rates are then read
    and each currency's path to USD found once per run, not once per entity.
    """
    out = {**content, **per_run_values(displayed)}
    if kind != "listing":
        return out
    return add_usd(out, rates, run_id, hint=hint_of(displayed))


def add_usd(
    content: dict[str, Any],
    rates: Mapping[str, Any] | RunRates,
    run_id: str,
    *,
    hint: KnownRate | None = None,
) -> dict[str, Any]:
    """Add `usd` next to the listing's `price` and next to each tier's `price`."""
    converter = rates if isinstance(rates, RunRates) else RunRates(rates, run_id)
    out = _with_usd(content, converter, hint)
    tiers = out.get("tiers")
    if isinstance(tiers, list) and tiers:
        out["tiers"] = [_with_usd(t, converter, hint) if isinstance(t, dict) else t for t in tiers]
    return out


def _with_usd(holder: dict[str, Any], rates: RunRates, hint: KnownRate | None) -> dict[str, Any]:
    price = holder.get("price")
    if not isinstance(price, dict) or not isinstance(price.get("amount"), Decimal):
        return holder
    currency = str(price.get("currency", ""))
    return {**holder, "usd": rates.usd(price["amount"], currency, hint)}


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
    return RunRates(rates, run_id).usd(amount, currency, hint)


class RunRates:
    """One run's recorded rates, read once, with each currency's way to USD found once.

    A run export converts every listing at the same rates; finding the path (a breadth
    first search over the rates, pipelines/normalise/rates.py) per listing was most of
    the conversion's cost. Only the multiplication and rounding remain per price.
    """

    def __init__(self, rates: Mapping[str, Any], run_id: str) -> None:
        self.run_id = run_id
        self.known = known_rates(rates)
        self._paths: dict[tuple[str, KnownRate | None], tuple[UsdRate, Rate] | None] = {}

    def _path(self, code: str, hint: KnownRate | None) -> tuple[UsdRate, Rate] | None:
        try:
            return self._paths[code, hint]
        except KeyError:
            pass
        found = usd_rate(code, self.known + ([hint] if hint is not None else []))
        path = None if found is None else (found, Rate(code, "USD", found.value, found.provenance))
        self._paths[code, hint] = path
        return path

    def usd(
        self, amount: Decimal, currency: str, hint: KnownRate | None = None
    ) -> dict[str, Any] | None:
        """`amount` of `currency` in USD at these rates (see `usd_value`), or None."""
        code = currency.upper()
        path = self._path(code, hint)
        if path is None:
            return None
        found, rate = path
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
        usd: dict[str, Any] = {
            "amount": value.amount,
            "rate": value.rate,
            "rate_source": value.source,
        }
        if code != "USD":
            usd.update(rate_path=value.path, rate_provenance=value.provenance)
        return {**usd, "run": self.run_id}
