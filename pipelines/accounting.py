"""How complete a run was: what the market said it had against what we fetched and parsed.

Delisting is inferred only from complete runs, so this verdict decides what research may
conclude from an absence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from crawler.pagestate import CONTENT_STATES, RATES_STATE

if TYPE_CHECKING:
    from collections.abc import Callable

    from crawler.items import PageItem


RunStatus = Literal["complete", "partial", "failed", "interrupted"]


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _page_key(url: str) -> str:
    """A page whatever mirror served it: its path and query."""
    parts = urlsplit(url)
    return urlunsplit(("", "", parts.path, parts.query, ""))


def _by_url(kind: str, url: str) -> str:
    return _page_key(url)


@dataclass
class RunAccounting:
    """Counters kept while a run goes; `verdict` turns them into a status and reasons.

    Links and parsed pages are counted by `identity` (kind, url) -> str: by default the
    path and query, in a crawl the page's key where its URL holds one (crawler/urls.py),
    so one listing linked under two URLs counts once.
    """

    identity: Callable[[str, str], str] = _by_url
    by_state: Counter[str] = field(default_factory=Counter)
    #: what a page (with its pagination) says it lists: (kind, page) -> count
    expected: dict[tuple[str, str], int] = field(default_factory=dict)
    #: what that page and its pagination linked: (kind, page) -> pages
    linked_from: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    #: what the market says it holds in all: kind -> count
    totals: dict[str, int] = field(default_factory=dict)
    listing_links: set[str] = field(default_factory=set)
    vendor_links: set[str] = field(default_factory=set)
    listings_parsed: set[str] = field(default_factory=set)
    vendors_parsed: set[str] = field(default_factory=set)
    failed_pages: set[str] = field(default_factory=set)
    problems: int = 0
    extraction_failures: int = 0
    feedback_new: int = 0
    archive_failures: int = 0
    #: the share of a kind's pages that may fail extraction before the run is called a
    #: template drift and fails (the source's `pages.<kind>.max_failed_share`)
    drift_limits: dict[str, float] = field(default_factory=dict)
    failed_by_kind: Counter[str] = field(default_factory=Counter)
    missing_fields: Counter[str] = field(default_factory=Counter)
    #: the source's rates page by state: counted as pages, never against completeness (a
    #: failed one is a `rates` run event, and USD falls back to the project rate table)
    rates_pages: Counter[str] = field(default_factory=Counter)

    def add(self, item: PageItem) -> None:
        if item.kind == RATES_STATE:
            self.rates_pages[item.state] += 1
            self.problems += len(item.problems)
            return
        self.by_state[item.state] += 1
        self.problems += len(item.problems)
        # Paginated pages repeat their count on every page: one slot per page chain.
        chain = _page_key(_without_query(item.url))
        for kind, count in item.expected.items():
            if kind.endswith("_total"):
                kind = kind.removesuffix("_total")
                self.totals[kind] = max(self.totals.get(kind, 0), count)
            else:
                self.expected[(kind, chain)] = max(self.expected.get((kind, chain), 0), count)
        for kind in ("listing", "vendor"):
            links = {self.identity(kind, u) for u in item.links.get(kind, [])}
            if item.state in ("index", "vendor") or kind == "vendor":
                (self.listing_links if kind == "listing" else self.vendor_links).update(links)
            self.linked_from.setdefault((kind, chain), set()).update(links)
        page = self.identity(item.state, item.url)
        # A listing or vendor page that yields no record (a missing id or field, drift, a
        # value that cannot be stored) failed extraction, whatever the reason.
        entity_page = item.state in ("listing", "vendor")
        if item.state not in CONTENT_STATES or item.missing or (entity_page and not item.records):
            self.failed_pages.add(page)
            if item.state in CONTENT_STATES:
                self.extraction_failures += 1
                self.failed_by_kind[item.state] += 1
                self.missing_fields.update(f"{item.state}.{name}" for name in item.missing)
            return
        if item.state == "listing":
            self.listings_parsed.add(page)
        elif item.state == "vendor":
            self.vendors_parsed.add(page)

    def drift(self) -> list[str]:
        """Loud failure when a kind's pages stop matching the blueprint (the market changed
        its template): a run of mostly empty records must not pass for a market change."""
        reasons = []
        for kind, limit in sorted(self.drift_limits.items()):
            pages, failed = self.by_state[kind], self.failed_by_kind[kind]
            if failed and failed > limit * pages:
                fields = [f for f, _ in self.missing_fields.most_common() if f.startswith(kind)]
                reasons.append(
                    f"template drift on {kind} pages: {failed} of {pages} failed extraction "
                    f"(over {limit:.0%}); fields not found: {', '.join(fields) or 'none named'}"
                )
        return reasons

    def expected_total(self, kind: str) -> int:
        """The market's own total if it shows one, else the sum of its pages' counts."""
        chains = sum(count for (k, _), count in self.expected.items() if k == kind)
        return self.totals.get(kind, chains)

    def short_chains(self, kind: str) -> list[str]:
        """Pages (with their pagination) that linked fewer entities than they say they list."""
        return [
            f"{chain} shows {count} but linked {len(self.linked_from.get((k, chain), ()))}"
            for (k, chain), count in sorted(self.expected.items())
            if k == kind and len(self.linked_from.get((k, chain), ())) < count
        ]

    def counts(self) -> dict[str, Any]:
        return {
            "pages": sum(self.by_state.values()) + sum(self.rates_pages.values()),
            "pages_by_state": dict(self.by_state + self.rates_pages),
            "expected_listings": self.expected_total("listing"),
            "expected_vendors": self.expected_total("vendor"),
            "listing_links": len(self.listing_links),
            "listings_parsed": len(self.listings_parsed),
            "vendor_links": len(self.vendor_links),
            "vendors_parsed": len(self.vendors_parsed),
            "failed_pages": len(self.failed_pages),
            "problems": self.problems,
            "feedback_new": self.feedback_new,
            "archive_failures": self.archive_failures,
        }

    def verdict(self, refusals: list[str], close_reason: str) -> tuple[RunStatus, list[str]]:
        """`complete` only when every expected page was fetched and parsed."""
        if refusals:
            return "failed", list(refusals)
        content = sum(self.by_state[s] for s in CONTENT_STATES)
        drift = self.drift()
        if drift:
            return "failed", drift
        stopped = [f"crawl stopped early: {close_reason}"] if close_reason != "finished" else []
        if not (self.listings_parsed or self.vendors_parsed):
            nothing = f"no listing or vendor page was parsed ({content} content pages)"
            return "failed", [nothing, *stopped]
        reasons = list(stopped)
        for state, count in sorted(self.by_state.items()):
            if state not in CONTENT_STATES:
                reasons.append(f"{count} page(s) in state {state}")
        if self.archive_failures:
            reasons.append(f"{self.archive_failures} write(s) to the archive failed (run events)")
        if self.extraction_failures:
            reasons.append(f"{self.extraction_failures} content page(s) failed extraction")
        unparsed = self.listing_links - self.listings_parsed
        if unparsed:
            reasons.append(f"{len(unparsed)} linked listing page(s) not parsed")
        unparsed_vendors = self.vendor_links - self.vendors_parsed
        if unparsed_vendors:
            reasons.append(f"{len(unparsed_vendors)} linked vendor page(s) not parsed")
        for kind, links in (("listing", self.listing_links), ("vendor", self.vendor_links)):
            total = self.totals.get(kind, 0)
            if total > len(links):
                linked = len(links)
                reasons.append(f"the market shows {total} {kind}s but its pages linked {linked}")
            short = self.short_chains(kind)
            if short:
                reasons.append(
                    f"{len(short)} page(s) linked fewer {kind}s than they show: "
                    + "; ".join(short[:3])
                )
        return ("partial" if reasons else "complete"), reasons
