"""Feedback matching: never double-count, never lose (sales are estimated from it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from pipelines.store import queries
from pipelines.store.model import Provenance

if TYPE_CHECKING:
    from pymongo.database import Database

    from pipelines.store.archive import Archive
    from pipelines.store.model import RunRef

DAY1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def weeks_ago(
    seen: datetime, n: int, text: str = "great, fast", buyer: str = "b***1"
) -> dict[str, Any]:
    """An entry the market shows as "n weeks ago" on the day it was seen."""
    return {
        "rating": 5,
        "text": text,
        "buyer": buyer,
        "date_earliest": seen - timedelta(weeks=n + 1),
        "date_latest": seen - timedelta(weeks=n),
        "date_text": f"{n} weeks ago",
    }


def prov(day: datetime) -> Provenance:
    return Provenance("http://m.onion/l/1", "cd" * 32, day, "p1")


def run_on(archive: Archive, day: datetime) -> RunRef:
    return archive.open_run("mkt", parser_version="p1", started_at=day)


def test_same_entry_on_consecutive_days_is_one(archive: Archive, db: Database) -> None:
    run1, run2 = run_on(archive, DAY1), run_on(archive, DAY2)
    assert archive.record_feedback(run1, "1", [weeks_ago(DAY1, 2)], prov(DAY1)) == 1
    assert archive.record_feedback(run2, "1", [weeks_ago(DAY2, 2)], prov(DAY2)) == 0
    (entry,) = queries.feedback(db, "mkt")
    # narrowed to the intersection of both intervals
    assert entry["date_earliest"] == DAY2 - timedelta(weeks=3)
    assert entry["date_latest"] == DAY1 - timedelta(weeks=2)
    assert entry["first_run"] == run1.run_id


def test_identical_entries_on_one_page_are_two(archive: Archive, db: Database) -> None:
    run1, run2 = run_on(archive, DAY1), run_on(archive, DAY2)
    twice = [weeks_ago(DAY1, 2), weeks_ago(DAY1, 2)]
    assert archive.record_feedback(run1, "1", twice, prov(DAY1)) == 2
    assert archive.record_feedback(run1, "1", twice, prov(DAY1)) == 0  # replayed page
    # next day: the two old ones again, plus a third identical one sold since
    next_day = [weeks_ago(DAY2, 2), weeks_ago(DAY2, 2), weeks_ago(DAY2, 0)]
    assert archive.record_feedback(run2, "1", next_day, prov(DAY2)) == 1
    assert archive.record_feedback(run2, "1", next_day, prov(DAY2)) == 0
    assert len(queries.feedback(db, "mkt")) == 3
    assert len(queries.feedback(db, "mkt", run_id=run1.run_id)) == 2


def test_different_identity_or_disjoint_interval_is_new(archive: Archive, db: Database) -> None:
    run1 = run_on(archive, DAY1)
    archive.record_feedback(run1, "1", [weeks_ago(DAY1, 2)], prov(DAY1))
    entries = [weeks_ago(DAY1, 2, text="slow"), weeks_ago(DAY1, 10), weeks_ago(DAY1, 2, buyer="x")]
    assert archive.record_feedback(run1, "1", entries, prov(DAY1)) == 3
    assert archive.record_feedback(run1, "2", [weeks_ago(DAY1, 2)], prov(DAY1)) == 1
    assert len(queries.feedback(db, "mkt")) == 5


def test_batch_of_pages_reads_once_and_matches_within_the_batch(
    archive: Archive, db: Database
) -> None:
    """The pipeline writes feedback in batches: a page replayed inside one batch, and the
    same listing seen on two days in one batch, still count each sale once."""
    run1, run2 = run_on(archive, DAY1), run_on(archive, DAY2)
    page1 = [weeks_ago(DAY1, 2), weeks_ago(DAY1, 2)]
    batch = [("1", page1, prov(DAY1)), ("1", page1, prov(DAY1)), ("2", page1[:1], prov(DAY1))]
    assert archive.record_feedback_many(run1, batch) == 3
    day2 = [("1", [weeks_ago(DAY2, 2), weeks_ago(DAY2, 2), weeks_ago(DAY2, 0)], prov(DAY2))]
    assert archive.record_feedback_many(run2, day2 + day2) == 1
    entries = queries.feedback(db, "mkt")
    assert len(entries) == 4
    narrowed = [e for e in entries if e["listing_key"] == "1" and e["first_run"] == run1.run_id]
    assert all(e["date_earliest"] == DAY2 - timedelta(weeks=3) for e in narrowed)


def test_entries_without_rating_or_buyer_are_kept_and_matched(
    archive: Archive, db: Database
) -> None:
    """ "Positive" feedback with no buyer shown is still a sale, counted once across days."""
    run1, run2 = run_on(archive, DAY1), run_on(archive, DAY2)
    anonymous = {**weeks_ago(DAY1, 1), "rating": None, "rating_text": "Positive", "buyer": ""}
    negative = {**anonymous, "rating_text": "Negative"}
    assert archive.record_feedback(run1, "1", [anonymous, negative], prov(DAY1)) == 2
    next_day = {**weeks_ago(DAY2, 1), "rating": None, "rating_text": "Positive", "buyer": ""}
    assert archive.record_feedback(run2, "1", [next_day], prov(DAY2)) == 0
    assert len(queries.feedback(db, "mkt")) == 2


def test_what_a_run_saw_is_never_rewritten_by_what_later_runs_learn(
    archive: Archive, db: Database
) -> None:
    """Run 1's answer stays run 1's: the narrower interval run 2 learned is stored beside it."""
    run1, run2 = run_on(archive, DAY1), run_on(archive, DAY2)
    archive.record_feedback(run1, "1", [weeks_ago(DAY1, 2)], prov(DAY1))
    before = queries.feedback(db, "mkt", run_id=run1.run_id)
    archive.record_feedback(run2, "1", [weeks_ago(DAY2, 2)], prov(DAY2))
    archive.record_feedback(run2, "1", [weeks_ago(DAY2, 2)], prov(DAY2))  # a resume: no change
    assert queries.feedback(db, "mkt", run_id=run1.run_id) == before
    (seen1,) = before
    assert (seen1["date_earliest"], seen1["narrowed_by"]) == (DAY1 - timedelta(weeks=3), None)
    (seen2,) = queries.feedback(db, "mkt", run_id=run2.run_id)
    assert (seen2["date_earliest"], seen2["narrowed_by"]) == (
        DAY2 - timedelta(weeks=3),
        "mkt:000002",
    )
    assert seen2["date_latest"] == seen1["date_latest"] == DAY1 - timedelta(weeks=2)
    assert len(db.feedback.find_one({})["narrowed"]) == 1


def days_ago(seen: datetime, start: int, end: int, buyer: str = "") -> dict[str, Any]:
    """An anonymous "Positive" entry whose interval is [seen - start days, seen - end days)."""
    return {
        "rating": None,
        "rating_text": "Positive",
        "text": "",
        "buyer": buyer,
        "date_earliest": seen - timedelta(days=start),
        "date_latest": seen - timedelta(days=end),
        "date_text": f"{start} days ago",
    }


def test_intervals_that_only_touch_are_two_entries(archive: Archive, db: Database) -> None:
    """[d-1, d) and [d, d+1) share no moment: two sales, and neither narrows to nothing
    (an entry once narrowed to the empty [d, d) matched nothing again and was stored anew
    by every later run)."""
    run1, run2, run3 = (run_on(archive, DAY1 + timedelta(days=n)) for n in range(3))
    assert archive.record_feedback(run1, "1", [days_ago(DAY1, 2, 1)], prov(DAY1)) == 1
    assert archive.record_feedback(run2, "1", [days_ago(DAY1, 1, 0)], prov(DAY2)) == 1
    entries = queries.feedback(db, "mkt")
    assert sorted((e["date_earliest"], e["date_latest"]) for e in entries) == [
        (DAY1 - timedelta(days=2), DAY1 - timedelta(days=1)),
        (DAY1 - timedelta(days=1), DAY1),
    ]
    both = [days_ago(DAY1, 2, 1), days_ago(DAY1, 1, 0)]
    assert archive.record_feedback(run3, "1", both, prov(DAY2)) == 0
    assert len(queries.feedback(db, "mkt")) == 2


def test_an_empty_interval_is_refused(archive: Archive) -> None:
    run1 = run_on(archive, DAY1)
    empty = {**days_ago(DAY1, 1, 1)}
    with pytest.raises(ValueError, match=r"\[earliest, latest\) is empty"):
        archive.record_feedback(run1, "1", [empty], prov(DAY1))


def test_identical_entries_are_paired_as_many_as_their_dates_allow(
    archive: Archive, db: Database
) -> None:
    """Two anonymous entries, one known to a week and one to a day: the next run shows one
    early in that week and one at its end. Pairing the first shown with the first stored
    (the week) leaves the day without a partner and stores a sale twice."""
    run1, run2 = run_on(archive, DAY1), run_on(archive, DAY2)
    stored = [days_ago(DAY1, 10, 3), days_ago(DAY1, 8, 7)]
    assert archive.record_feedback(run1, "1", stored, prov(DAY1)) == 2
    shown = [days_ago(DAY1, 9, 6), days_ago(DAY1, 5, 4)]
    assert archive.record_feedback(run2, "1", shown, prov(DAY2)) == 0
    assert len(queries.feedback(db, "mkt")) == 2
