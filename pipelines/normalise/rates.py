"""Which rate converts a currency to USD: read either way round, crossed, with its path.

A market prints its rates the way its buyers think ("1 USD = 92,50 ₽", "1 BTC = $67,012"),
a price may sit next to a second displayed price ("$150.00 ≈ 0.0021 BTC"), and the project
keeps a rate table for markets that show none. Every rate known for a run becomes a
`KnownRate` with its provenance; `usd_rate` finds the shortest chain of them from a
currency to USD, the market's own first, then the listing's hint, then the table, and says
which way each step was read.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any

from pipelines.normalise.prices import RATE_CAP

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

logger = logging.getLogger(__name__)

#: where a rate came from, strongest first: the page's own line and the source's rates
#: page are the market speaking; a hint is one listing's second price; the table is ours
SOURCE_RANK: dict[str, int] = {"market": 0, "rates_page": 0, "hint": 1, "table": 2}
#: the longest chain tried (RUB→BTC→EUR→USD); longer ones compound rounding and staleness
MAX_STEPS = 3
#: significant digits kept of a derived rate (a quotient or a product of rates)
DIGITS = 15
#: key prefix of the project table's rates in a run's `rates`, apart from the market's
TABLE_PREFIX = "table:"


@dataclass(frozen=True, slots=True)
class KnownRate:
    """``value`` units of ``quote`` buy one ``base``, as ``source`` showed it."""

    base: str
    quote: str
    value: Decimal
    source: str  # "market" (a page line), "rates_page", "hint" or "table"
    provenance: str  # "page line '1 BTC = $67,012.50' on http://…", "rate table 2026-11-01: …"


@dataclass(frozen=True, slots=True)
class UsdRate:
    """USD per one ``currency``, with every step that led there."""

    currency: str
    value: Decimal
    source: str  # the steps' sources, "+"-joined in path order ("market", "market+table")
    path: str  # "RUB→BTC→USD"
    provenance: str  # each step's provenance, "; "-joined, "(inverted)" where read backwards


@dataclass(frozen=True, slots=True)
class _Step:
    rate: KnownRate
    inverted: bool

    @property
    def start(self) -> str:
        return self.rate.quote if self.inverted else self.rate.base

    @property
    def end(self) -> str:
        return self.rate.base if self.inverted else self.rate.quote

    @property
    def value(self) -> Decimal:
        """Units of `end` per one `start` (unrounded: the chain is rounded once)."""
        return 1 / self.rate.value if self.inverted else self.rate.value


def _round(value: Decimal) -> Decimal:
    """`DIGITS` significant digits, without trailing zeros or exponent notation."""
    with localcontext() as context:
        context.prec = DIGITS
        value = (+value).normalize()
    exponent = value.as_tuple().exponent
    return value.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else value


def invert(rate: KnownRate) -> KnownRate:
    """The same rate read the other way round ("1 USD = 92.50 RUB" → 1 RUB in USD).

    >>> r = invert(KnownRate("USD", "RUB", Decimal("92.50"), "market", "line"))
    >>> (r.base, r.quote, r.value)
    ('RUB', 'USD', Decimal('0.0108108108108108'))
    """
    return KnownRate(rate.quote, rate.base, _round(1 / rate.value), rate.source, rate.provenance)


def usd_rate(currency: str, known: Iterable[KnownRate]) -> UsdRate | None:
    """The rate from ``currency`` to USD, or None when no chain of known rates leads there.

    The market's rates are tried alone first, then with the listing's hint, then with the
    project table, so a table rate is used only when the market's (and the hint's) cannot
    give one; within each, the shortest chain wins (a direct rate before a cross rate).

    >>> btc_usd = KnownRate("BTC", "USD", Decimal("67000"), "market", "a")
    >>> btc_rub = KnownRate("BTC", "RUB", Decimal("6700000"), "market", "b")
    >>> found = usd_rate("RUB", [btc_usd, btc_rub])
    >>> found.path, found.value
    ('RUB→BTC→USD', Decimal('0.01'))
    """
    code = currency.upper()
    if code == "USD":
        return UsdRate("USD", Decimal(1), "identity", "USD", "identity")
    rates = sorted(
        (r for r in known if r.base != r.quote and r.value > 0),
        key=lambda r: SOURCE_RANK.get(r.source, len(SOURCE_RANK)),
    )
    for rank in sorted({SOURCE_RANK.get(r.source, len(SOURCE_RANK)) for r in rates}):
        usable = [r for r in rates if SOURCE_RANK.get(r.source, len(SOURCE_RANK)) <= rank]
        steps = _shortest(code, usable)
        if steps is not None:
            return _chained(code, steps)
    return None


def _shortest(start: str, rates: list[KnownRate]) -> list[_Step] | None:
    """Breadth first from `start` to USD; edges in `rates` order, so ties go stronger."""
    edges: dict[str, list[_Step]] = {}
    for rate in rates:
        edges.setdefault(rate.base, []).append(_Step(rate, inverted=False))
        edges.setdefault(rate.quote, []).append(_Step(rate, inverted=True))
    queue: deque[tuple[str, list[_Step]]] = deque([(start, [])])
    seen = {start}
    while queue:
        node, path = queue.popleft()
        if len(path) >= MAX_STEPS:
            continue
        for step in edges.get(node, []):
            if step.end in seen:
                continue
            if step.end == "USD":
                return [*path, step]
            seen.add(step.end)
            queue.append((step.end, [*path, step]))
    return None


def _chained(currency: str, steps: list[_Step]) -> UsdRate | None:
    value = steps[0].value
    for step in steps[1:]:
        value *= step.value
    if len(steps) > 1 or steps[0].inverted:  # derived: round once; a shown rate stays as shown
        value = _round(value)
    if not value.is_finite() or value <= 0 or value > RATE_CAP:
        return None
    sources = list(dict.fromkeys(step.rate.source for step in steps))
    path = "→".join([currency, *(step.end for step in steps)])
    provenance = "; ".join(
        step.rate.provenance + (" (inverted)" if step.inverted else "") for step in steps
    )
    return UsdRate(currency, value, "+".join(sources), path, provenance)


def rate_key(base: str, quote: str) -> str:
    """How a run keeps a rate in its `rates`: the base for X/USD, else "BASE/QUOTE".

    >>> rate_key("BTC", "USD"), rate_key("USD", "RUB")
    ('BTC', 'USD/RUB')
    """
    return base if quote == "USD" else f"{base}/{quote}"


def provenance_of(entry: Mapping[str, Any]) -> str:
    """A stored rate's provenance in words, for rates recorded before it was written down."""
    if entry.get("provenance"):
        return str(entry["provenance"])
    source, url, text = entry.get("source") or "market", entry.get("url"), entry.get("text")
    shown = f" {text!r}" if text else ""
    where = f" on {url}" if url else ""
    if source == "rates_page":
        return f"rates page{where}:{shown}" if shown else f"rates page{where}"
    if source == "hint":
        return f"hint{shown}{where}"
    return f"page line{shown}{where}"


def known_rates(rates: Mapping[str, Any]) -> list[KnownRate]:
    """A run's recorded `rates` (market, rates page, table) as `KnownRate`s.

    >>> [r.base for r in known_rates({"BTC": {"value": Decimal(1), "quote": "USD"}})]
    ['BTC']
    """
    found = []
    for key, entry in rates.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), Decimal):
            continue
        pair = key.removeprefix(TABLE_PREFIX)
        base = str(entry.get("base") or pair.split("/")[0]).upper()
        quote = str(entry.get("quote") or "USD").upper()
        source = str(entry.get("source") or "market")
        found.append(KnownRate(base, quote, entry["value"], source, provenance_of(entry)))
    return found


def hint_rate(price: Mapping[str, Any], hint: Mapping[str, Any], url: str) -> KnownRate | None:
    """The rate a price and its displayed second price imply ("$150.00 ≈ 0.0021 BTC").

    Read as the non-USD currency's rate in USD when one side is USD.

    >>> usd = {"amount": Decimal("150.00"), "currency": "USD", "text": "$150.00"}
    >>> btc = {"amount": Decimal("0.0021"), "currency": "BTC", "text": "≈ 0.0021 BTC"}
    >>> r = hint_rate(usd, btc, "http://m/l/1")
    >>> (r.base, r.quote, r.value, r.provenance)
    ('BTC', 'USD', Decimal('71428.5714285714'), "hint '≈ 0.0021 BTC' beside '$150.00' on http://m/l/1")
    """
    price_amount, hint_amount = price.get("amount"), hint.get("amount")
    price_code, hint_code = str(price.get("currency") or ""), str(hint.get("currency") or "")
    if not (isinstance(price_amount, Decimal) and isinstance(hint_amount, Decimal)):
        return None
    if price_amount <= 0 or hint_amount <= 0 or not price_code or not hint_code:
        return None
    if price_code == hint_code:
        return None
    if price_code == "USD":  # one hint currency costs price/hint dollars
        base, quote, value = hint_code, price_code, price_amount / hint_amount
    else:
        base, quote, value = price_code, hint_code, hint_amount / price_amount
    provenance = f"hint {hint.get('text')!r} beside {price.get('text')!r} on {url}"
    return KnownRate(base, quote, _round(value), "hint", provenance)
