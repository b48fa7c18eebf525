"""Health checks and metrics against runs written through the real store on a real server.

Each check gets a planted condition (a drop of half the listings, a template drift, a
paused session, Tor failures, challenge pages, records missing their price) and the clean
runs around it must yield nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from crawler.alerts.config import (
    DEFAULT_ALERTS_CONFIG,
    AlertsConfig,
    AlertsConfigError,
    load_alerts_config,
)
from pipelines.health import HealthThresholds, Thresholds, check_run
from pipelines.metrics import build_registry, write_textfile
from pipelines.store import runs
from pipelines.store.model import EntityObservation, Provenance

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from pymongo.database import Database

    from pipelines.store.archive import Archive
    from pipelines.store.model import RunRef

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DRIFT = (
    "template drift on vendor pages: 30 of 30 failed extraction (over 20%); "
    "fields not found: vendor.name"
)
LOGIN = (
    "source mkt paused: a login page at http://m.onion/login means the session expired or "
    "was never valid; set a fresh one with `darkarchive session set mkt`"
)
TTL = "attempt 1: TTL expired (SOCKS 0x06): socks error"
DOWN = (
    "source mkt marked down: 25 requests failed in a row through Tor, the last with "
    "TTL expired (SOCKS 0x06)"
)


def listing(
    key: str, day: int, *, price: bool = True, source: str = "mkt", in_stock: bool | None = None
) -> EntityObservation:
    amount = Decimal("0.01") + Decimal(day) / 1000
    content: dict[str, Any] = {
        "title": f"Listing {key}",
        "vendor": "v1",
        "price": {"amount": amount, "currency": "BTC", "text": f"{amount} BTC"} if price else None,
    }
    if in_stock is not None:
        content["in_stock"] = in_stock
    prov = Provenance(f"http://{source}.onion/l/{key}", "ab" * 32, T0 + timedelta(days=day), "p1")
    return EntityObservation(key, content, prov)


def crawl(
    archive: Archive,
    day: int,
    listings: int,
    *,
    status: str = "complete",
    reasons: Sequence[str] = (),
    by_state: dict[str, int] | None = None,
    events: Sequence[tuple[str, str]] = (),
    unpriced: int = 0,
    sold_out: bool = False,
    source: str = "mkt",
) -> RunRef:
    """One run as the pipeline writes it: entities, events, then the close with counts.
    The first `unpriced` listings have no price (shown out of stock if `sold_out`)."""
    run = archive.open_run(source, parser_version="p1", started_at=T0 + timedelta(days=day))
    batch = [
        listing(
            f"l{i}",
            day,
            price=i >= unpriced,
            source=source,
            in_stock=False if sold_out and i < unpriced else None,
        )
        for i in range(listings)
    ]
    if batch:
        archive.record_entities(run, "listing", batch)
    for n, (kind, reason) in enumerate(events):
        archive.record_event(run, kind=kind, reason=reason, url=f"http://{source}.onion/{n}")
    pages = by_state if by_state is not None else {"index": 2, "listing": listings}
    archive.close_run(
        run,
        status=status,  # type: ignore[arg-type]
        counts={"pages": sum(pages.values()), "pages_by_state": pages},
        reasons=list(reasons),
    )
    return run


def checks(db: Database, run: RunRef, thresholds: Thresholds | None = None) -> dict[str, Any]:
    return {f.check: f for f in check_run(db, run.run_id, thresholds)}


def test_clean_runs_yield_nothing(archive: Archive, db: Database) -> None:
    first = crawl(archive, 0, 20)
    second = crawl(archive, 1, 20)  # every price moved: 20 new versions, all complete
    third = crawl(archive, 1, 18)  # 10 % fewer: within the threshold
    assert check_run(db, first.run_id) == []
    assert check_run(db, second.run_id) == []
    assert check_run(db, third.run_id) == []


def test_listing_drop_is_measured_against_the_last_complete_run(
    archive: Archive, db: Database
) -> None:
    complete = crawl(archive, 0, 20)
    partial = crawl(archive, 1, 4, status="partial", reasons=["crawl stopped early: shutdown"])
    halved = crawl(archive, 2, 10)
    found = checks(db, halved)
    assert set(found) == {"listing_drop"}
    drop = found["listing_drop"]
    assert drop.severity == "alert"
    assert (drop.source, drop.run) == ("mkt", halved.run_id)
    assert "observed 10 listings, 50% fewer than the 20" in drop.reason
    assert complete.run_id in drop.reason and partial.run_id not in drop.reason
    assert set(checks(db, partial)) == {"run_status", "listing_drop"}


def test_template_drift_failed_run(archive: Archive, db: Database) -> None:
    crawl(archive, 0, 20)
    failed = crawl(archive, 1, 20, status="failed", reasons=[DRIFT])
    found = checks(db, failed)
    assert set(found) == {"run_status", "template_drift"}
    assert found["run_status"].reason == f"run {failed.run_id} of mkt ended failed: {DRIFT}"
    assert DRIFT in found["template_drift"].reason
    assert f"darkarchive reparse mkt --run {failed.run_id}" in found["template_drift"].action
    assert [f.severity for f in check_run(db, failed.run_id)] == ["alert", "alert"]


def test_partial_run_of_a_paused_source(archive: Archive, db: Database) -> None:
    crawl(archive, 0, 20)
    paused = crawl(
        archive,
        1,
        19,
        status="partial",
        reasons=["crawl stopped early: session_expired", "1 page(s) in state login_wall"],
        by_state={"index": 2, "listing": 19, "login_wall": 1},
        events=[("session", LOGIN), ("session", "the team was notified (notify command)")],
    )
    found = checks(db, paused)
    assert set(found) == {"run_status", "session_expired"}
    assert "ended partial: crawl stopped early: session_expired" in found["run_status"].reason
    assert "Nothing was delisted" in found["run_status"].action
    assert found["session_expired"].reason == f"{LOGIN} (run {paused.run_id})"
    assert "darkarchive session set mkt" in found["session_expired"].action


def test_a_source_paused_before_the_crawl_fetches_nothing(archive: Archive, db: Database) -> None:
    crawl(archive, 0, 20)
    refusal = (
        "source mkt is paused: its stored session expired (login page in run mkt:000001); "
        "set a fresh one with `darkarchive session set mkt`: nothing was fetched"
    )
    refused = crawl(archive, 1, 0, status="failed", reasons=[refusal], by_state={})
    assert set(checks(db, refused)) == {"run_status", "session_expired"}  # no drop to zero


def test_tor_failures_and_a_source_marked_down(archive: Archive, db: Database) -> None:
    crawl(archive, 0, 20)
    down = crawl(
        archive,
        1,
        18,
        status="partial",
        reasons=["crawl stopped early: source_down"],
        events=[*[("tor", f"{TTL} {n}") for n in range(12)], ("tor", DOWN)],
    )
    found = checks(db, down)
    assert set(found) == {"run_status", "source_down", "tor_failures"}
    assert found["source_down"].reason == f"{DOWN} (run {down.run_id})"
    assert found["tor_failures"].severity == "warning"
    assert "13 Tor failures" in found["tor_failures"].reason
    assert set(checks(db, down, Thresholds(tor_failures=20))) == {"run_status", "source_down"}


def test_tor_unavailable(archive: Archive, db: Database) -> None:
    no_tor = "source mkt is a Tor source: no usable Tor: bootstrap timed out: nothing was fetched"
    refused = crawl(archive, 0, 0, status="failed", reasons=[no_tor], by_state={})
    found = checks(db, refused)
    assert set(found) == {"run_status", "tor_unavailable"}
    assert no_tor in found["tor_unavailable"].reason
    assert "darkarchive tor check mkt" in found["tor_unavailable"].action
    stopped = crawl(
        archive,
        1,
        5,
        status="partial",
        reasons=["crawl stopped early: tor_unavailable"],
        events=[("tor", "Tor stopped answering (Tor's SOCKS port refused the connection)")],
    )
    assert "SOCKS port refused" in checks(db, stopped)["tor_unavailable"].reason


@pytest.mark.parametrize(
    ("by_state", "expected"),
    [
        ({"index": 2, "listing": 13, "captcha": 3, "queue": 1, "login_wall": 1}, "challenge_rate"),
        ({"index": 2, "listing": 16, "rate_limited": 2, "error": 2}, None),  # 10 %, 10 %
        ({"index": 2, "listing": 13, "error": 3, "not_found": 2}, "error_rate"),
    ],
)
def test_page_rates(
    archive: Archive, db: Database, by_state: dict[str, int], expected: str | None
) -> None:
    run = crawl(archive, 0, 14, by_state=by_state)
    found = checks(db, run)
    assert set(found) == ({expected} if expected else set())
    if expected:
        assert found[expected].severity == "warning"
        assert "of the 20 pages" in found[expected].reason


def test_page_rates_wait_for_enough_pages(archive: Archive, db: Database) -> None:
    run = crawl(archive, 0, 3, by_state={"index": 1, "listing": 3, "captcha": 2})
    assert check_run(db, run.run_id) == []


def test_field_coverage_of_the_versions_a_run_wrote(archive: Archive, db: Database) -> None:
    crawl(archive, 0, 20)
    unpriced = crawl(archive, 1, 20, unpriced=10)
    found = checks(db, unpriced)
    assert set(found) == {"listing_field_coverage"}
    assert found["listing_field_coverage"].reason.startswith(
        f"of the 20 listing versions run {unpriced.run_id} wrote, only 50% have every key "
        "field (price missing in 10"
    )
    again = crawl(archive, 1, 20, unpriced=10)  # nothing changed: no version to judge
    assert check_run(db, again.run_id) == []


def test_out_of_stock_listings_are_not_missing_their_price(archive: Archive, db: Database) -> None:
    crawl(archive, 0, 20)
    sold_out = crawl(archive, 1, 20, unpriced=10, sold_out=True)  # "out of stock", no price
    assert check_run(db, sold_out.run_id) == []


def test_per_source_thresholds(archive: Archive, db: Database) -> None:
    by_state = {"index": 2, "listing": 14, "captcha": 5}
    mkt = crawl(archive, 0, 14, by_state=by_state)
    other = crawl(archive, 0, 14, by_state=by_state, source="other")
    thresholds = HealthThresholds(sources={"mkt": Thresholds(challenge_rate=0.5)})
    assert thresholds.for_source("mkt").error_rate == 0.2  # only what it sets is overridden
    assert check_run(db, mkt.run_id, thresholds) == []
    assert set(checks(db, other, thresholds)) == {"challenge_rate"}


def test_interrupted_and_unclosed_runs(archive: Archive, db: Database) -> None:
    left_open = archive.open_run("mkt", parser_version="p1", started_at=T0)
    found = checks(db, left_open)
    assert set(found) == {"run_status"}
    assert f"--resume {left_open.run_id}" in found["run_status"].action
    if "interrupted" not in runs.CLOSED_STATUSES:
        pytest.skip("the store does not close runs as interrupted yet")
    archive.close_run(
        left_open,
        status="interrupted",  # type: ignore[arg-type]
        counts={"pages": 0},
        reasons=["crawl stopped early: shutdown"],
    )
    found = checks(db, left_open)
    assert "ended interrupted" in found["run_status"].reason
    assert f"--resume {left_open.run_id}" in found["run_status"].action
    crawl(archive, 1, 20)
    stopped = crawl(archive, 2, 5, status="interrupted", reasons=["interrupted: a signal"])
    assert set(checks(db, stopped)) == {"run_status"}  # fewer listings: no news when stopped


def test_unknown_run(db: Database) -> None:
    with pytest.raises(KeyError, match="no run 'mkt:000009'"):
        check_run(db, "mkt:000009")


def test_the_shipped_alerts_file_holds_the_defaults() -> None:
    assert load_alerts_config(DEFAULT_ALERTS_CONFIG) == AlertsConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("thresholds:\n  listing_drop: 1.5\n", "key thresholds.listing_drop: Input should be"),
        ("thresholds:\n  sources:\n    mkt: {challenge_rat: 0.4}\n", "challenge_rat: Extra"),
        ("notify:\n  webhook: {url: ftp://x}\n", "expected an http(s):// URL"),
        ("notify:\n  email: {host: h, to: [a@b]}\n", "key notify.email.from: Field required"),
        ("- a list\n", "expected a mapping of keys at the top level"),
    ],
)
def test_a_bad_alerts_file_names_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    with pytest.raises(AlertsConfigError) as caught:
        load_alerts_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_metrics_of_the_archive(archive: Archive, db: Database, tmp_path: Path) -> None:
    registry = build_registry(db)
    assert list(text_string_to_metric_families(_text(registry))) != []  # empty but valid
    first = crawl(archive, 0, 20)
    crawl(archive, 1, 12, status="partial", by_state={"index": 2, "listing": 12, "captcha": 3})
    crawl(archive, 0, 5, source="other")
    value = registry.get_sample_value  # read from the archive at each collection
    assert value("darkarchive_last_run_pages", {"source": "mkt", "state": "captcha"}) == 3
    assert value("darkarchive_last_run_pages", {"source": "mkt", "state": "listing"}) == 12
    assert value("darkarchive_last_run_items", {"source": "mkt", "kind": "listing"}) == 12
    assert value("darkarchive_last_run_items", {"source": "other", "kind": "listing"}) == 5
    assert value("darkarchive_last_run_status", {"source": "mkt", "status": "partial"}) == 1
    assert value("darkarchive_last_run_status", {"source": "mkt", "status": "complete"}) == 0
    assert value("darkarchive_listed", {"source": "mkt", "kind": "listing"}) == 20
    duration = value("darkarchive_last_run_duration_seconds", {"source": "mkt"})
    assert duration is not None and duration >= 0
    closed = db.runs.find_one({"_id": first.run_id})["finished_at"]
    good = value("darkarchive_last_complete_run_timestamp_seconds", {"source": "mkt"})
    assert good == pytest.approx(closed.timestamp(), abs=0.002)

    path = tmp_path / "darkarchive.prom"
    write_textfile(db, path)
    text = path.read_text()
    assert 'darkarchive_last_run_pages{source="mkt",state="captcha"} 3.0' in text
    assert 'darkarchive_last_run_status{source="other",status="complete"} 1.0' in text
    assert "# TYPE darkarchive_last_complete_run_timestamp_seconds gauge" in text
    assert text == _text(registry)


def _text(registry: Any) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()
