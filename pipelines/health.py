"""After a run: is this source still being archived well, or does it need a person?

Every check reads what the run already stored (its document, its events, the versions it
wrote), so checking a run costs a few indexed reads, never a scan of the archive.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pymongo import DESCENDING

from pipelines.store.schema import RUN_EVENTS, RUNS, versions_collection

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pymongo.database import Database

logger = logging.getLogger(__name__)

Severity = Literal["alert", "warning"]

#: pages a market answered with instead of content (the README's "markets that fight back")
CHALLENGE_STATES = ("captcha", "queue", "rate_limited", "login_wall")
ERROR_STATES = ("error", "not_found")
#: statuses a person should hear about; `running` on a checked run means it was left open
UNFINISHED = ("failed", "partial", "interrupted", "running")
#: runs that did not get to the end of the market: fewer listings is no news there
STOPPED_RUNS = ("interrupted", "running")
#: key fields per kind: a version without them is a record research cannot use
KEY_FIELDS = {"listing": ("title", "price", "vendor"), "vendor": ("name",)}
STOPPED = "crawl stopped early: "


class Thresholds(BaseModel):
    """When a figure of a run becomes a finding (the `thresholds:` keys of alerts.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: alert when a run observes more than this share fewer listings (or vendors) than the
    #: last complete run before it
    listing_drop: float = Field(default=0.30, ge=0, le=1)
    vendor_drop: float = Field(default=0.30, ge=0, le=1)
    #: warning when fewer than this share of the versions a run wrote have their key fields
    min_field_coverage: float = Field(default=0.90, ge=0, le=1)
    #: ... judged only when the run wrote at least this many versions of the kind
    coverage_min_versions: int = Field(default=10, ge=1)
    #: warning when this share of a run's pages were challenges (captcha, queue, …)
    challenge_rate: float = Field(default=0.20, ge=0, le=1)
    #: warning when this share of a run's pages were errors or not found
    error_rate: float = Field(default=0.20, ge=0, le=1)
    #: page rates are judged only on runs of at least this many pages
    min_pages: int = Field(default=10, ge=1)
    #: warning when a run recorded more `tor` events (failures, new identities) than this
    tor_failures: int = Field(default=10, ge=0)


class HealthThresholds(Thresholds):
    """Defaults for every source, and per-source overrides of any of them."""

    sources: dict[str, Thresholds] = Field(default_factory=dict)

    def for_source(self, source: str) -> Thresholds:
        """The defaults with the keys this source overrides (only those it sets)."""
        base = Thresholds(**self.model_dump(exclude={"sources"}))
        override = self.sources.get(source)
        if override is None:
            return base
        return base.model_copy(update=override.model_dump(exclude_unset=True))


@dataclass(frozen=True)
class Finding:
    """One thing about one run that a person should know, and what to do about it."""

    source: str
    run: str
    check: str
    severity: Severity
    reason: str
    action: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_run(
    db: Database[Any], run_id: str, thresholds: Thresholds | None = None
) -> list[Finding]:
    """Every finding about run `run_id`, alerts first; an empty list means all is well."""
    run = db[RUNS].find_one({"_id": run_id})
    if run is None:
        raise KeyError(f"no run {run_id!r} in the archive")
    source: str = run["source"]
    if thresholds is None:
        thresholds = Thresholds()
    if isinstance(thresholds, HealthThresholds):
        thresholds = thresholds.for_source(source)
    found = [
        *_status(run),
        *_stops(db, run),
        *_drops(db, run, thresholds),
        *_coverage(db, run, thresholds),
        *_page_rates(run, thresholds),
        *_tor_failures(run, thresholds),
    ]
    found.sort(key=lambda f: f.severity != "alert")
    logger.info("run %s: %d finding(s)", run_id, len(found))
    return found


def _finding(
    run: dict[str, Any], check: str, severity: Severity, reason: str, action: str
) -> Finding:
    return Finding(run["source"], run["_id"], check, severity, reason, action)


def _status(run: dict[str, Any]) -> Iterator[Finding]:
    status, source, run_id = run.get("status"), run["source"], run["_id"]
    if status not in UNFINISHED:
        return
    reasons: list[str] = list(run.get("reasons") or [])
    said = "; ".join(reasons[:5]) + (f" (and {len(reasons) - 5} more)" if len(reasons) > 5 else "")
    if status == "running":
        reason = f"run {run_id} of {source} is still open: its crawl stopped without closing it"
    else:
        reason = f"run {run_id} of {source} ended {status}: {said or 'no reason recorded'}"
    if status in ("interrupted", "running"):
        action = (
            f"Once the cause is fixed, finish the same run: "
            f"`darkarchive crawl {source} --resume {run_id}`."
        )
    elif status == "partial":
        action = (
            f"Nothing was delisted by this run. Read `darkarchive runs {source}`; if the cause "
            "was passing the next complete run catches up, otherwise fix it."
        )
    else:
        action = (
            f"Read the run's events (`darkarchive runs {source}`), fix the cause above, "
            f"then crawl again: `darkarchive crawl {source}`."
        )
    yield _finding(run, "run_status", "alert", reason, action)


def _events(db: Database[Any], run: dict[str, Any], kind: str) -> Iterable[str]:
    """Reasons of the run's events of one kind; no query when the run's counter says none."""
    if not (run.get("events") or {}).get(kind):
        return []
    cursor = db[RUN_EVENTS].find({"run": run["_id"], "kind": kind}, {"reason": 1})
    return [doc["reason"] for doc in cursor.limit(10_000)]


def _stops(db: Database[Any], run: dict[str, Any]) -> Iterator[Finding]:
    """Template drift, a source marked down, no Tor, a paused source: each needs a person."""
    source, run_id = run["source"], run["_id"]
    reasons: list[str] = list(run.get("reasons") or [])
    for reason in reasons:
        if reason.startswith("template drift"):
            yield _finding(
                run,
                "template_drift",
                "alert",
                f"{source} changed its page template (run {run_id}): {reason}",
                f"Save a current page (`darkarchive fixtures save-page {source} <url> --kind "
                f"<kind> --case <name>`), fix the selectors in config/sources/{source}.yaml, "
                f"then re-read the run: `darkarchive reparse {source} --run {run_id}`.",
            )
    tor_events = list(_events(db, run, "tor"))
    down = [r for r in tor_events if " marked down: " in r]
    if down or STOPPED + "source_down" in reasons:
        said = down[-1] if down else f"the crawl of {source} stopped: source_down"
        yield _finding(
            run,
            "source_down",
            "alert",
            f"{said} (run {run_id})",
            f"The market did not answer through Tor. Check whether it moved: add a working "
            f"mirror to config/sources/{source}.yaml (or `--mirror URL`), then crawl again.",
        )
    no_tor = [r for r in reasons if r == STOPPED + "tor_unavailable" or "is a Tor source: " in r]
    stopped = [r for r in tor_events if r.startswith("Tor stopped answering")]
    if no_tor or stopped:
        yield _finding(
            run,
            "tor_unavailable",
            "alert",
            f"Tor was not usable for {source} in run {run_id}: {'; '.join(stopped or no_tor)}",
            f"Check the tor darkarchive uses: `darkarchive tor check {source}` "
            "(config/tor.yaml), then crawl again.",
        )
    paused = [r for r in _events(db, run, "session") if " paused" in r]
    paused += [r for r in reasons if "stored session expired" in r]
    if paused or STOPPED + "session_expired" in reasons:
        said = paused[0] if paused else f"the crawl of {source} stopped: session_expired"
        yield _finding(
            run,
            "session_expired",
            "alert",
            f"{said} (run {run_id})",
            f"Log in to the market with a browser, then `darkarchive session set {source}` "
            f"and `darkarchive session check {source}`; crawls fetch nothing until then.",
        )


def _previous_complete(db: Database[Any], run: dict[str, Any]) -> dict[str, Any] | None:
    query = {"source": run["source"], "status": "complete", "seq": {"$lt": run["seq"]}}
    cursor = db[RUNS].find(query, {"counts": 1, "seq": 1}).sort("seq", DESCENDING).limit(1)
    return next(iter(cursor), None)


def _observed(run: dict[str, Any], kind: str) -> int:
    return int(((run.get("counts") or {}).get(kind) or {}).get("observed") or 0)


def _drops(db: Database[Any], run: dict[str, Any], limits: Thresholds) -> Iterator[Finding]:
    """Fewer listings (vendors) than the last complete run, beyond the threshold.

    Runs that fetched nothing, and runs stopped before they finished (interrupted, left
    open), are left to the status check: their drop says nothing more.
    """
    if not (run.get("counts") or {}).get("pages") or run.get("status") in STOPPED_RUNS:
        return
    previous = _previous_complete(db, run)
    if previous is None:
        return
    for kind, limit in (("listing", limits.listing_drop), ("vendor", limits.vendor_drop)):
        before, now = _observed(previous, kind), _observed(run, kind)
        if before == 0 or (before - now) / before <= limit:
            continue
        yield _finding(
            run,
            f"{kind}_drop",
            "alert",
            f"run {run['_id']} observed {now} {kind}s, {(before - now) / before:.0%} fewer than "
            f"the {before} of the last complete run {previous['_id']} (threshold {limit:.0%})",
            f"Check whether the market shrank or the crawl missed pages: compare "
            f"`darkarchive runs {run['source']}` (pages by state, expected vs parsed) for both "
            "runs, and look at the market in a browser.",
        )


def _present(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("amount") is not None  # a price that could not be read is absent
    return value not in (None, "", [])


def _coverage(db: Database[Any], run: dict[str, Any], limits: Thresholds) -> Iterator[Finding]:
    """Share of the versions this run wrote that have their key fields.

    Read through the `(source, valid_from_run, v)` index: equality on source and run. Only
    versions the run wrote are judged, and that is enough: an entity the run saw unchanged
    has the content of a version already judged, and a selector that stops finding a field
    changes every entity's content, so the run writes a version for each of them.
    """
    for kind, fields in KEY_FIELDS.items():
        projection = {f"content.{name}": 1 for name in (*fields, "in_stock")}
        cursor = db[versions_collection(kind)].find(
            {"source": run["source"], "valid_from_run": run["_id"]}, projection
        )
        total, missing = 0, dict.fromkeys(fields, 0)
        for doc in cursor:
            total += 1
            content = doc.get("content") or {}
            for name in fields:
                # a listing the market shows as out of stock has no price to show
                sold_out = name == "price" and content.get("in_stock") is False
                missing[name] += not sold_out and not _present(content.get(name))
        if total < limits.coverage_min_versions:
            continue
        worst = min(total - n for n in missing.values()) / total
        if worst >= limits.min_field_coverage:
            continue
        gaps = ", ".join(f"{name} missing in {n}" for name, n in missing.items() if n)
        yield _finding(
            run,
            f"{kind}_field_coverage",
            "warning",
            f"of the {total} {kind} versions run {run['_id']} wrote, only {worst:.0%} have "
            f"every key field ({gaps}; threshold {limits.min_field_coverage:.0%})",
            f"Open a few of these pages, check the `pages.{kind}.fields` selectors in "
            f"config/sources/{run['source']}.yaml, and replay the saved cases "
            f"(`pytest tests/test_replay.py -k {run['source']}`).",
        )


def _page_rates(run: dict[str, Any], limits: Thresholds) -> Iterator[Finding]:
    counts = run.get("counts") or {}
    pages = int(counts.get("pages") or 0)
    by_state: dict[str, int] = counts.get("pages_by_state") or {}
    if pages < limits.min_pages:
        return
    rates = (
        ("challenge_rate", CHALLENGE_STATES, limits.challenge_rate, "challenge pages"),
        ("error_rate", ERROR_STATES, limits.error_rate, "error or not-found pages"),
    )
    for check, states, limit, what in rates:
        hit = {s: int(by_state[s]) for s in states if by_state.get(s)}
        if sum(hit.values()) / pages <= limit:
            continue
        detail = ", ".join(f"{n} {s}" for s, n in sorted(hit.items()))
        action = (
            "The market is defending itself: lower `politeness.concurrency` or raise "
            "`politeness.delay` in the source file, and check the session."
            if check == "challenge_rate"
            else "Pages are failing or gone: check the mirrors and the run's fetch events "
            f"(`darkarchive runs {run['source']}`)."
        )
        yield _finding(
            run,
            check,
            "warning",
            f"{sum(hit.values())} of the {pages} pages of run {run['_id']} were {what} "
            f"({sum(hit.values()) / pages:.0%}: {detail}; threshold {limit:.0%})",
            action,
        )


def _tor_failures(run: dict[str, Any], limits: Thresholds) -> Iterator[Finding]:
    count = int((run.get("events") or {}).get("tor") or 0)
    if count <= limits.tor_failures:
        return
    yield _finding(
        run,
        "tor_failures",
        "warning",
        f"run {run['_id']} recorded {count} Tor failures or new identities "
        f"(threshold {limits.tor_failures})",
        f"Read the run's `tor` events (`darkarchive runs {run['source']}`): an onion that "
        "fails often may have moved, or the tor may need `darkarchive tor check`.",
    )
