"""Writing a spool into the archive once the database answers again, and closing its run.

A crawl that ended while the database was away left its pages and its verdict in the
spool (`pipelines/store/spool.py`). Flushing replays them in order through the same
idempotent write path as a live crawl (`PageWrites`), records the outage on the run, and
closes the run with the verdict the crawl computed. A damaged tail is written up to the
damage, recorded on the run (which is then partial), and set aside, never deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.store.archive import Archive
from pipelines.store.model import RunRef
from pipelines.store.page_writes import PageWrites
from pipelines.store.runs import mark_interrupted, resumable_run
from pipelines.store.spool import SpoolDamage, SpoolError

if TYPE_CHECKING:
    from pathlib import Path

    from pymongo.database import Database

    from pipelines.store.model import CloseSummary
    from pipelines.store.spool import Spool, SpoolSummary

logger = logging.getLogger(__name__)


@dataclass
class FlushReport:
    """What a flush wrote and how the run ended."""

    run_id: str
    summary: SpoolSummary
    status: str
    seconds: float
    kept: Path | None = None  # where a damaged spool was set aside

    def describe(self) -> str:
        kept = f"; damaged spool kept in {self.kept}" if self.kept else ""
        return (
            f"spool of run {self.run_id}: {self.summary.describe()} written in "
            f"{self.seconds:.1f} s; run {self.status}{kept}"
        )


def record_outage(
    archive: Archive, run: RunRef, since: datetime | None, until: datetime, pages: int
) -> None:
    """The run says when the database was away and how many pages waited in the spool."""
    start = f"{since:%Y-%m-%d %H:%M:%S} UTC" if since else "an unknown time"
    archive.record_event(
        run,
        kind="archive",
        reason=(
            f"the archive database was unreachable from {start} to {until:%Y-%m-%d %H:%M:%S} "
            f"UTC; {pages} page(s) were spooled and written when it was back"
        ),
        detail={"outage_start": since, "outage_end": until, "pages_spooled": pages},
    )


def flush_spool(db: Database, spool: Spool, *, db_name: str) -> FlushReport:
    """Write a spool (held by no live crawl) into `db` and close or interrupt its run."""
    started = datetime.now(UTC)
    spool.lock()
    try:
        summary = spool.summary()
        header = _header(spool)
        if header.get("db") not in (None, db_name):
            raise SpoolError(
                f"the spool of run {spool.run_id} belongs to database {header['db']!r}, not "
                f"{db_name!r}: set DARKARCHIVE_DB={header['db']}"
            )
        source = str(header["source"])
        doc = resumable_run(db, spool.run_id, source=source)
        run = RunRef(run_id=spool.run_id, source=source, seq=int(doc["seq"]))
        archive = Archive(db)
        archive.ensure_indexes()
        failures = [0]

        def failed() -> None:
            failures[0] += 1

        writes = PageWrites(
            archive, run, parser_version=str(header["parser_version"]), on_failure=failed
        )
        for _, record in spool.read():
            if isinstance(record, SpoolDamage):
                break
            writes.replay(record)
        writes.checkpoint()
        record_outage(archive, run, header.get("since"), datetime.now(UTC), summary.pages)
        status = _close(archive, run, summary, failures[0], spool.run_id)
        kept = None
        if summary.damage is not None:
            kept = spool.keep_damaged()
        else:
            spool.remove()
    finally:
        spool.unlock()
    seconds = (datetime.now(UTC) - started).total_seconds()
    report = FlushReport(spool.run_id, summary, status, seconds, kept)
    logger.info("%s", report.describe())
    return report


def _header(spool: Spool) -> dict[str, Any]:
    for _, record in spool.read():
        if isinstance(record, SpoolDamage) or record.get("type") != "run":
            break
        return record
    raise SpoolError(f"the spool {spool.path} does not start with its run's header")


def _close(archive: Archive, run: RunRef, summary: SpoolSummary, failures: int, run_id: str) -> str:
    damage = summary.damage
    if damage is not None:
        archive.record_event(run, kind="archive", reason=f"spool damaged: {damage.describe()}")
    verdict = summary.verdict
    if verdict is None:  # the crawl died before it could judge the run: it can be resumed
        source = run.source
        mark_interrupted(
            archive.db,
            run_id,
            "interrupted: the crawl ended while the archive database was unreachable and "
            f"left no verdict; resume with `darkarchive crawl {source} --resume {run_id}`",
        )
        return "interrupted"
    status, reasons = str(verdict["status"]), list(verdict.get("reasons") or [])
    counts: dict[str, Any] = dict(verdict.get("counts") or {})
    if failures:
        counts["archive_failures"] = int(counts.get("archive_failures", 0)) + failures
        reasons.append(f"{failures} write(s) to the archive failed (run events)")
    if damage is not None:
        reasons.append(f"the spool was damaged: {damage.unreadable} byte(s) not written")
    if (failures or damage is not None) and status == "complete":
        status = "partial"
    for refusal in verdict.get("refusals") or []:
        archive.record_event(run, kind="refused", reason=refusal)
    closed: CloseSummary = archive.close_run(
        run,
        status=status,  # type: ignore[arg-type]
        counts=counts,
        reasons=reasons,
    )
    return closed.status
