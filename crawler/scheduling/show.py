"""`darkarchive schedule show`: each source's clock, last crawl and recent attempts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler.scheduling.outcomes import describe_exit
from crawler.scheduling.timing import format_duration

if TYPE_CHECKING:
    from crawler.scheduling.config import Schedules, SourceSchedule


def schedule_report(
    schedules: Schedules, documents: dict[str, dict[str, Any]], *, attempts: int
) -> list[dict[str, Any]]:
    """One entry per scheduled source (and per stored source no longer in the file)."""
    report = []
    for source in [*schedules.sources, *sorted(set(documents) - set(schedules.sources))]:
        entry = schedules.sources.get(source)
        doc = documents.get(source, {})
        report.append(
            {
                "source": source,
                "schedule": _describe_schedule(entry) if entry else "not in the schedule file",
                "enabled": bool(entry and entry.enabled),
                "next_due": doc.get("next_due"),
                "running": doc.get("running"),
                "last_started": doc.get("last_started"),
                "last_finished": doc.get("last_finished"),
                "last_exit_code": doc.get("last_exit_code"),
                "last_status": doc.get("last_status"),
                "last_run_id": doc.get("last_run_id"),
                "resume_run": doc.get("resume_run"),
                "consecutive_failures": doc.get("consecutive_failures", 0),
                "recent_attempts": list(doc.get("history", []))[-attempts:] if attempts else [],
            }
        )
    return report


def _describe_schedule(entry: SourceSchedule) -> str:
    clock = f"every {format_duration(entry.every)}" if entry.every else f"cron {entry.cron!r}"
    parts = [clock]
    if entry.jitter:
        parts.append(f"jitter {format_duration(entry.jitter)}")
    if entry.allowed_hours:
        parts.append(f"hours {entry.allowed_hours} UTC")
    if entry.daily_page_budget:
        parts.append(f"{entry.daily_page_budget} pages a day")
    return ", ".join(parts)


def print_json(report: list[dict[str, Any]]) -> None:
    print(json.dumps(report, indent=2, default=_json_value))


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def print_text(report: list[dict[str, Any]], now: datetime) -> None:
    for item in report:
        state = "" if item["enabled"] else " [disabled]"
        print(f"{item['source']}: {item['schedule']}{state}")
        running = item["running"]
        if running:
            print(f"  running: since {_when(running.get('started_at'), now)}, pid {running['pid']}")
        print(f"  next due: {_when(item['next_due'], now)}")
        print(f"  last start: {_when(item['last_started'], now)}")
        if item["last_exit_code"] is not None:
            run = f", run {item['last_run_id']}" if item["last_run_id"] else ""
            print(
                f"  last exit: {item['last_exit_code']} ({item['last_status']}){run}, "
                f"finished {_when(item['last_finished'], now)}"
            )
        print(f"  consecutive failures: {item['consecutive_failures']}")
        if item["resume_run"]:
            print(f"  next crawl resumes: {item['resume_run']} (interrupted by a scheduler stop)")
        if item["recent_attempts"]:
            print("  recent attempts:")
        for attempt in reversed(item["recent_attempts"]):
            print(f"    {_attempt_line(attempt)}")


def _attempt_line(attempt: dict[str, Any]) -> str:
    started, finished = attempt.get("started_at"), attempt.get("finished_at")
    took = f" in {(finished - started).total_seconds():.1f} s" if started and finished else ""
    code = attempt.get("exit_code")
    exit_text = f"exit {code} " if code is not None else ""
    status = attempt.get("status") or describe_exit(code)
    run = f" {attempt['run_id']}" if attempt.get("run_id") else ""
    said = f": {attempt['message']}" if attempt.get("message") else ""
    return f"{_stamp(started)}  {exit_text}{status} ({attempt.get('outcome')}){run}{took}{said}"


def _stamp(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else "-"


def _when(when: datetime | None, now: datetime) -> str:
    """`2026-12-01 02:41:07 UTC (in 10h 51m)`."""
    if when is None:
        return "never"
    seconds = (when - now).total_seconds()
    span = format_duration(float(int(abs(seconds))))
    return f"{_stamp(when)} ({'in ' + span if seconds >= 0 else span + ' ago'})"
