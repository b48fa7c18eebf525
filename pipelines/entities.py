"""Raw page fields to normalised listing, vendor and feedback records.

Each normalised value sits beside its raw text; a value that cannot be read keeps its
raw text with the reason, and the problem is reported so the run records it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crawler.sources.model import SHIPS_FROM
from pipelines.normalise import (
    NormaliseError,
    Price,
    Rating,
    html_to_text,
    memo,
    parse_countries,
    parse_country,
    parse_flag,
    pgp_fingerprint,
    price_per_unit,
)
from pipelines.normalise.dates import zone

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from crawler.sources.model import NormaliseHints


@dataclass
class Reader:
    """Normalises one page's fields under the source's hints, collecting problems."""

    hints: NormaliseHints
    base: datetime
    problems: list[str] = field(default_factory=list)

    def attempt(self, name: str, raw: str | None, parse: Callable[[str], Any]) -> Any:
        if raw is None or raw == "":
            return None
        try:
            return parse(raw)
        except NormaliseError as exc:
            self.problems.append(f"field {name}: {exc}")
        except (ValueError, ArithmeticError) as exc:  # "3000 years ago": past what dates hold
            self.problems.append(f"field {name}: cannot read {raw[:200]!r}: {exc}")
        return None

    def rating(self, name: str, raw: str | None) -> Rating | None:
        """A rating on the source's scale for its field when the text shows none ("4.8");
        a word the source maps ("Positive": "5/5") is read as what it maps to."""
        scale = self.hints.scale_for("feedback" if name.startswith("feedback") else "vendor")
        decimal_scale = None if scale is None else Decimal(str(scale))

        def read(text: str) -> Rating:
            mapped = self.hints.values.ratings.get(" ".join(text.lower().split()))
            rating = memo.rating(mapped or text, decimal_scale)
            return replace(rating, text=text) if mapped else rating

        return self.attempt(name, raw, read)  # type: ignore[no-any-return]

    def flag(self, name: str, raw: str | None) -> bool | None:
        """A yes/no fact ("In stock", "FE: not allowed"), with the source's own words."""
        return self.attempt(  # type: ignore[no-any-return]
            name, raw, lambda t: parse_flag(t, self.hints.values.flags)
        )

    def text(self, raw: Any) -> str | None:
        return raw.strip() if isinstance(raw, str) and raw.strip() else None

    def price(self, name: str, raw: str | None) -> dict[str, Any] | None:
        parsed = self.attempt(
            name,
            raw,
            lambda t: memo.price(t, self.hints.default_currency, self.hints.decimal_separator),
        )
        if parsed is None:
            return {"text": raw, "error": "unreadable"} if raw else None
        return {"amount": parsed.amount, "currency": parsed.currency, "text": parsed.text}

    def quantity(self, name: str, raw: str | None) -> tuple[dict[str, Any] | None, Any]:
        """A quantity; the source's own unit words ("1 copy", "5 шт") read as their unit,
        the text stored as shown."""
        units = self.hints.values.units

        def read(text: str) -> Any:
            for word, unit in units.items():
                # not inside a word, but "3,5г" and "100шт×10мг" glue the unit to the number
                text = re.sub(rf"(?<![^\W\d_]){re.escape(word)}(?!\w)", unit, text, flags=re.I)
            return memo.quantity(text, self.hints.decimal_separator)

        parsed = self.attempt(name, raw, read)
        if parsed is None:
            return ({"text": raw, "error": "unreadable"} if raw else None), None
        value = {"amount": parsed.amount, "unit": parsed.unit, "count": parsed.count, "text": raw}
        return value, parsed

    def date(self, name: str, raw: str | None) -> dict[str, Any] | None:
        parsed = self.attempt(
            name,
            raw,
            lambda t: memo.date(
                t,
                self.base,
                tuple(self.hints.languages),
                self.hints.date_order,
                zone(self.hints.timezone),
            ),
        )
        if parsed is None:
            return {"text": raw, "error": "unreadable"} if raw else None
        return {"earliest": parsed.earliest, "latest": parsed.latest, "text": raw}

    def shipping(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Ships-from and ships-to; a destination the source maps to `@ships_from`
        ("Domestic") is the listing's own ships-from country."""
        ships_from = self.text(fields.get("ships_from"))
        ships_to = self.text(fields.get("ships_to"))
        languages, words = self.hints.languages, self.hints.values.countries
        origin = self.attempt(
            "ships_from", ships_from, lambda t: parse_country(t, languages, words)
        )
        if origin == SHIPS_FROM:
            self.problems.append(f"field ships_from: {ships_from!r} names no country of its own")
            origin = None
        destinations = []
        for code in (
            self.attempt("ships_to", ships_to, lambda t: parse_countries(t, languages, words)) or ()
        ):
            if code != SHIPS_FROM:
                destinations.append(code)
            elif origin is not None:
                destinations.append(origin)
            else:
                self.problems.append(
                    f"field ships_to: {ships_to!r} means the ships-from country, which is unknown"
                )
        return {
            "ships_from": origin,
            "ships_from_text": ships_from,
            "ships_to": list(dict.fromkeys(destinations)),
            "ships_to_text": ships_to,
        }


def _price_per_unit(price: dict[str, Any] | None, quantity: Any) -> dict[str, Any] | None:
    if not price or "amount" not in price or quantity is None:
        return None
    per_unit = price_per_unit(Price(price["amount"], price["currency"], price["text"]), quantity)
    if per_unit is None:
        return None
    unit = "g" if quantity.grams is not None else quantity.unit
    return {"amount": per_unit, "currency": price["currency"], "unit": unit}


def listing_record(
    reader: Reader, fields: Mapping[str, Any], extra: Sequence[str] = ()
) -> dict[str, Any]:
    """The versioned content of a listing (feedback is kept apart: it only accumulates)."""
    price = reader.price("price", reader.text(fields.get("price")))
    quantity, parsed_quantity = reader.quantity("quantity", reader.text(fields.get("quantity")))
    tiers = []
    for index, tier in enumerate(fields.get("tiers") or []):
        tier_quantity, tier_parsed = reader.quantity(
            f"tiers[{index}].quantity", reader.text(tier.get("quantity"))
        )
        tier_price = reader.price(f"tiers[{index}].price", reader.text(tier.get("price")))
        tiers.append(
            {
                "quantity": tier_quantity,
                "price": tier_price,
                "price_per_unit": _price_per_unit(tier_price, tier_parsed),
            }
        )
    description = fields.get("description")
    return {
        "title": reader.text(fields.get("title")),
        "category_path": [c.strip() for c in fields.get("category_path") or [] if c.strip()],
        "description": html_to_text(description) if description else None,
        "vendor": reader.text(fields.get("vendor_id")),
        "price": price,
        "quantity": quantity,
        "price_per_unit": _price_per_unit(price, parsed_quantity),
        "tiers": tiers,
        **reader.shipping(fields),
        **_listing_facts(reader, fields),
        **_extra(reader, fields, extra),
    }


def _listing_facts(reader: Reader, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The optional facts a listing may show, each only where the source reads it: a
    source that does not changes no stored content (and so makes no new version)."""
    facts: dict[str, Any] = {}
    for name in ("listed", "updated"):
        if name in fields:
            facts[name] = reader.date(name, reader.text(fields.get(name)))
    if "availability" in fields:
        text = reader.text(fields.get("availability"))
        facts["in_stock"] = reader.flag("availability", text)
        facts["availability_text"] = text
    if "sales" in fields:
        text = reader.text(fields.get("sales"))
        facts["sales"] = reader.attempt("sales", text, memo.count)
        facts["sales_text"] = text
    for name in ("escrow", "finalize_early"):
        if name in fields:
            text = reader.text(fields.get(name))
            facts[name] = reader.flag(name, text)
            facts[f"{name}_text"] = text
    if "shipping_options" in fields:
        facts["shipping_options"] = [
            {
                "name": reader.text(option.get("name")),
                "price": reader.price(
                    f"shipping_options[{index}].price", reader.text(option.get("price"))
                ),
            }
            for index, option in enumerate(fields.get("shipping_options") or [])
        ]
    return facts


def _extra(reader: Reader, fields: Mapping[str, Any], extra: Sequence[str]) -> dict[str, Any]:
    """A source's own fields (`extra_fields`), kept as the text shown."""
    if not extra:
        return {}
    kept: dict[str, Any] = {}
    for name in extra:
        value = fields.get(name)
        kept[name] = (
            [v for v in (reader.text(x) for x in value) if v]
            if isinstance(value, list)
            else reader.text(value)
        )
    return {"extra": kept}


def feedback_records(reader: Reader, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Buyer feedback entries; their dates are intervals because markets show them coarsely."""
    entries = []
    for index, raw in enumerate(fields.get("feedback") or []):
        rating_text = reader.text(raw.get("rating"))
        rating = reader.rating(f"feedback[{index}].rating", rating_text)
        date = reader.date(f"feedback[{index}].date", reader.text(raw.get("date")))
        if date is None or "earliest" not in date:
            continue
        entries.append(
            {
                "rating": rating.raw if rating else None,
                "rating_scale": rating.scale if rating else None,
                "rating_text": rating_text,
                "buyer": reader.text(raw.get("buyer")) or "",
                "text": reader.text(raw.get("text")) or "",
                "date_earliest": date["earliest"],
                "date_latest": date["latest"],
                "date_text": date["text"],
            }
        )
    return entries


def vendor_record(
    reader: Reader, fields: Mapping[str, Any], extra: Sequence[str] = ()
) -> dict[str, Any]:
    """The versioned content of a vendor profile."""
    rating_text = reader.text(fields.get("rating"))
    rating = reader.rating("rating", rating_text)
    count_text = reader.text(fields.get("feedback_count"))
    key_text = fields.get("pgp_key")
    key_text = key_text.strip() if isinstance(key_text, str) and key_text.strip() else None
    return {
        "name": reader.text(fields.get("name")),
        "rating": (
            {"value": rating.value, "raw": rating.raw, "scale": rating.scale, "text": rating_text}
            if rating
            else ({"text": rating_text, "error": "unreadable"} if rating_text else None)
        ),
        "feedback_count": reader.attempt("feedback_count", count_text, memo.count),
        "feedback_count_text": count_text,
        "joined": reader.date("joined", reader.text(fields.get("joined"))),
        "bio": html_to_text(fields["bio"]) if fields.get("bio") else None,
        "pgp_fingerprint": reader.attempt("pgp_key", key_text, pgp_fingerprint),
        "pgp_key": key_text,
        **reader.shipping(fields),
        **_vendor_facts(reader, fields),
        **_extra(reader, fields, extra),
    }


def _vendor_facts(reader: Reader, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Level, badges and sales where the source reads them (see `_listing_facts`)."""
    facts: dict[str, Any] = {}
    if "level" in fields:
        text = reader.text(fields.get("level"))
        number = re.search(r"\d+", text or "")
        facts["level"] = {"value": int(number.group()) if number else None, "text": text}
    if "badges" in fields:
        value = fields.get("badges")
        badges = value if isinstance(value, list) else [value]
        facts["badges"] = [b for b in (reader.text(x) for x in badges) if b]
    if "sales" in fields:
        text = reader.text(fields.get("sales"))
        facts["sales"] = reader.attempt("sales", text, memo.count)
        facts["sales_text"] = text
    return facts
