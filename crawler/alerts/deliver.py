"""After a run closes: check it, tell the team, and note on the run who was told."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from crawler.alerts.channels import post_webhook, run_command, send_email
from crawler.alerts.config import load_alerts_config
from pipelines.health import check_run
from pipelines.store.model import RunRef
from pipelines.store.runs import record_event
from pipelines.store.schema import RUN_EVENTS, RUNS

if TYPE_CHECKING:
    from pathlib import Path

    from pymongo.database import Database

    from crawler.alerts.config import AlertsConfig, Notify
    from pipelines.health import Finding

logger = logging.getLogger(__name__)

SEVERITY_RANK = {"warning": 0, "alert": 1}


def alert_on_run(
    db: Database[Any],
    run_id: str,
    *,
    config_path: Path | str | None = None,
    config: AlertsConfig | None = None,
) -> list[Finding]:
    """Check run `run_id`, deliver what is new, record each delivery as an `alert` event.

    Returns every finding, delivered or not. A finding already delivered for this run (an
    `alert` event exists) is not sent again, so calling this twice tells the team once.
    Delivery failures are logged and never raise; a bad alerts file raises
    `AlertsConfigError` (load it with `load_alerts_config` before the crawl to fail early).
    """
    config = config or load_alerts_config(config_path)
    findings = check_run(db, run_id, config.thresholds)
    for finding in findings:
        log = logger.error if finding.severity == "alert" else logger.warning
        log("%s %s on %s: %s", finding.severity, finding.check, finding.run, finding.reason)
    floor = SEVERITY_RANK[config.notify.min_severity]
    told = _delivered(db, run_id)
    fresh = [
        f for f in findings if SEVERITY_RANK[f.severity] >= floor and _event_reason(f) not in told
    ]
    if not fresh:
        return findings
    channels = deliver(fresh, config.notify)
    run_doc = db[RUNS].find_one({"_id": run_id}, {"source": 1, "seq": 1}) or {}
    run = RunRef(run_id, run_doc.get("source", fresh[0].source), int(run_doc.get("seq", 0)))
    for finding in fresh:
        if channels[finding]:
            record_event(
                db,
                run,
                kind="alert",
                reason=_event_reason(finding),
                detail={
                    "check": finding.check,
                    "severity": finding.severity,
                    "action": finding.action,
                    "channels": channels[finding],
                },
            )
    return findings


def deliver(findings: list[Finding], notify: Notify) -> dict[Finding, list[str]]:
    """Send the findings through every configured channel; the channels that took each."""
    channels: dict[Finding, list[str]] = {f: [] for f in findings}
    for finding in findings:
        if run_command(finding, notify.command):
            channels[finding].append("command")
    batched: list[str] = []  # one message per run carries every finding
    if notify.webhook is not None and post_webhook(findings, notify.webhook):
        batched.append("webhook")
    if notify.email is not None and send_email(findings, notify.email):
        batched.append("email")
    for finding in findings:
        channels[finding] += batched
    if not any(channels.values()):
        logger.warning(
            "%d finding(s) of run %s reached no one (no notifier configured or all failed)",
            len(findings),
            findings[0].run,
        )
    return channels


def _event_reason(finding: Finding) -> str:
    return f"{finding.check}: {finding.reason}"


def _delivered(db: Database[Any], run_id: str) -> set[str]:
    cursor = db[RUN_EVENTS].find({"run": run_id, "kind": "alert"}, {"reason": 1})
    return {doc["reason"] for doc in cursor}
