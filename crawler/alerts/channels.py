"""Deliver a run's findings: the notify command, a webhook, a mail. A failure is logged.

No delivery ever raises: the crawl is over and archived whatever happens here. Secrets (a
webhook URL with a token, an SMTP password) are never logged.
"""

from __future__ import annotations

import http.client
import json
import logging
import smtplib
import ssl
import subprocess
import urllib.request
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from crawler.alerts.command import notify_command, start_notify_command
from crawler.session import SessionSecretError, read_secret
from crawler.sources.model import SecretRef

if TYPE_CHECKING:
    from collections.abc import Sequence

    from crawler.alerts.config import CommandNotifier, EmailNotifier, WebhookNotifier
    from pipelines.health import Finding

logger = logging.getLogger(__name__)


def render_text(findings: Sequence[Finding]) -> str:
    """The findings as a person reads them in a mail or a chat message."""
    first = findings[0]
    lines = [f"darkarchive: {len(findings)} finding(s) for run {first.run} of {first.source}"]
    for finding in findings:
        lines += ["", f"[{finding.severity.upper()}] {finding.check}: {finding.reason}"]
        lines.append(f"  What to do: {finding.action}")
    return "\n".join(lines)


def run_command(finding: Finding, config: CommandNotifier) -> bool:
    """Run the notify command for one finding; True when it exited 0 (or is still running)."""
    command = notify_command()
    if not (config.enabled and command):
        return False
    try:
        process = start_notify_command(
            command,
            event="alert",
            source=finding.source,
            run=finding.run,
            reason=finding.reason,
            extra={
                "DARKARCHIVE_CHECK": finding.check,
                "DARKARCHIVE_SEVERITY": finding.severity,
                "DARKARCHIVE_ACTION": finding.action,
            },
        )
    except OSError as exc:
        logger.error("notify command could not start for %s: %s", finding.check, exc)
        return False
    try:
        code = process.wait(timeout=config.timeout)
    except subprocess.TimeoutExpired:
        logger.warning("notify command still running after %.0f s; left to finish", config.timeout)
        return True
    if code != 0:
        logger.error("notify command exited %d for %s (%s)", code, finding.check, finding.run)
    return code == 0


def webhook_target(config: WebhookNotifier) -> str:
    """What the log may say about the webhook: where the URL comes from, never the URL."""
    if isinstance(config.url, SecretRef):
        return f"webhook (${config.url.env})" if config.url.env else "webhook (from a file)"
    parts = urlsplit(config.url)
    return f"webhook {parts.scheme}://{parts.hostname}"


def post_webhook(findings: Sequence[Finding], config: WebhookNotifier) -> bool:
    """POST the findings as JSON: `{source, run, text, findings: [{…, reason, action}]}`."""
    target = webhook_target(config)
    try:
        url = read_secret(config.url, target) if isinstance(config.url, SecretRef) else config.url
    except SessionSecretError as exc:
        logger.error("alerts not sent: %s", exc)
        return False
    body = {
        "source": findings[0].source,
        "run": findings[0].run,
        "text": render_text(findings),
        "findings": [f.as_dict() for f in findings],
    }
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "darkarchive-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=config.timeout) as response:
            status = response.status
    except (OSError, ValueError, http.client.HTTPException) as exc:
        said = str(exc).replace(url, "<url>")  # an error may quote the URL and its token
        logger.error("%s: %d finding(s) not delivered: %s", target, len(findings), said)
        return False
    logger.info("%s: %d finding(s) delivered (HTTP %d)", target, len(findings), status)
    return True


def send_email(findings: Sequence[Finding], config: EmailNotifier) -> bool:
    """One mail per run with every finding; STARTTLS and login when configured."""
    first = findings[0]
    alerts = sum(f.severity == "alert" for f in findings)
    message = EmailMessage()
    message["Subject"] = (
        f"{config.subject_prefix} {first.source}: {alerts} alert(s), "
        f"{len(findings) - alerts} warning(s) after run {first.run}"
    )
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    message.set_content(render_text(findings))
    target = f"mail via {config.host}:{config.port}"
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=config.ca_file))
            if config.username:
                password = read_secret(config.password, target) if config.password else ""
                smtp.login(config.username, password)
            smtp.send_message(message)
    except (OSError, SessionSecretError) as exc:  # smtplib's errors are OSErrors
        logger.error("%s: %d finding(s) not delivered: %s", target, len(findings), exc)
        return False
    logger.info("%s: %d finding(s) delivered to %s", target, len(findings), message["To"])
    return True
