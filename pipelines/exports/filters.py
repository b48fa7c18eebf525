"""Which rows a filtered export keeps: the listings a query names, and what hangs off them.

A paper often publishes one slice of a market (one category, one vendor, what ships from
one country). The listing rows are filtered as `darkarchive search` filters; a vendor row
is kept when a kept listing of the same run names the vendor, a feedback row when its
listing was kept in some run of the export. Pages are the raw evidence of the runs and
are exported whole. The manifest records the filter with the query.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.store.tokens import fold

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

logger = logging.getLogger(__name__)

Row = dict[str, Any]


@dataclass(frozen=True)
class ExportFilter:
    """Conditions on listings; all given ones must hold. Empty: keep everything."""

    category: str | None = None  # a name on the listing's category path
    vendor: str | None = None  # vendor id
    ships_from: str | None = None  # ISO country code

    def __bool__(self) -> bool:
        return any(v is not None for v in asdict(self).values())

    def describe(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def keeps(self, row: Row) -> bool:
        """Does this listing row (see tables.listing_rows) meet every condition?"""
        if self.vendor is not None and row.get("vendor") != self.vendor:
            return False
        if self.ships_from is not None and row.get("ships_from") != self.ships_from.upper():
            return False
        if self.category is not None:
            path = [fold(p) for p in str(row.get("category") or "").split(" > ")]
            return fold(self.category) in path
        return True


@dataclass
class Kept:
    """What the filter kept so far: listing keys per run, and the vendors they name."""

    rule: ExportFilter
    listings: dict[str, set[str]] = field(default_factory=dict)
    vendors: dict[str, set[str]] = field(default_factory=dict)

    def listing_rows(self, rows: Iterable[Row]) -> Iterator[Row]:
        for row in rows:
            if self.rule.keeps(row):
                self.listings.setdefault(row["run"], set()).add(row["key"])
                if row.get("vendor"):
                    self.vendors.setdefault(row["run"], set()).add(row["vendor"])
                yield row

    def vendor_rows(self, rows: Iterable[Row]) -> Iterator[Row]:
        """Only after the listings were read: vendors named by a kept listing."""
        return (r for r in rows if r["key"] in self.vendors.get(r["run"], ()))

    def feedback_rows(self, rows: Iterable[Row]) -> Iterator[Row]:
        """Only after the listings were read: feedback on a listing kept in any run."""
        every: set[str] | None = None
        for row in rows:
            if every is None:
                every = set().union(*self.listings.values())
            if row["listing_key"] in every:
                yield row
