"""Alert delivery to real receivers on loopback: an HTTP webhook, an SMTP server, a command.

Nothing is mocked: the webhook is an `http.server` in a thread, the mail server is aiosmtpd,
the notify command is a real process, and the runs are written through the real store.
"""

from __future__ import annotations

import json
import logging
import ssl
import sys
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crawler.alerts import alert_on_run
from crawler.alerts.channels import webhook_target
from crawler.alerts.config import WebhookNotifier
from crawler.tor.managed import free_port
from pipelines.store.model import EntityObservation, Provenance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymongo.database import Database

    from pipelines.store.archive import Archive
    from pipelines.store.model import RunRef

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "T0KEN-s3cret-path"


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint that keeps what it was sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.posts: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/{TOKEN}"


class _Hook(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append(
            {"path": self.path, "type": self.headers["Content-Type"], "json": json.loads(body)}
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


class Mailbox:
    """aiosmtpd handler and authenticator: keeps each mail and who logged in."""

    def __init__(self) -> None:
        self.mails: list[Any] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope)
        return "250 OK"

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        self.logins.append((auth.login, auth.password))
        return AuthResult(success=auth.password == b"mail-pass")


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, authenticator=box, auth_require_tls=False
    )
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def tls_smtp(tmp_path: Path) -> Iterator[tuple[Mailbox, int, Path]]:
    """An SMTP server that refuses anything before STARTTLS, with a self-signed cert."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    _self_signed(cert, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box,
        tls_context=context,
        require_starttls=True,
    )
    controller.start()
    yield box, port, cert
    controller.stop()


def _self_signed(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def drop_run(archive: Archive) -> RunRef:
    """A complete run of 20 listings, then a partial one of 10: two alerts."""
    for day, count, status in ((0, 20, "complete"), (1, 10, "partial")):
        run = archive.open_run("mkt", parser_version="p1", started_at=T0 + timedelta(days=day))
        prov = Provenance("http://m.onion/l", "ab" * 32, T0, "p1")
        batch = [EntityObservation(f"l{i}", {"title": f"L{i}"}, prov) for i in range(count)]
        archive.record_entities(run, "listing", batch)
        archive.close_run(
            run,
            status=status,  # type: ignore[arg-type]
            counts={"pages": count + 1, "pages_by_state": {"index": 1, "listing": count}},
            reasons=["1 linked listing page(s) not parsed"] if status == "partial" else [],
        )
    return run


def config_file(tmp_path: Path, notify: str) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text("notify:\n  command: {enabled: false}\n" + notify)
    return path


def alert_events(db: Database, run: RunRef) -> list[dict[str, Any]]:
    return list(db.run_events.find({"run": run.run_id, "kind": "alert"}).sort("reason", 1))


def test_webhook_delivery_is_recorded_and_not_repeated(
    archive: Archive,
    db: Database,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = drop_run(archive)
    monkeypatch.setenv("TEST_ALERT_HOOK", receiver.url)
    path = config_file(tmp_path, "  webhook: {url: {env: TEST_ALERT_HOOK}, timeout: 5}\n")
    with caplog.at_level(logging.INFO):
        findings = alert_on_run(db, run.run_id, config_path=path)
    assert [f.check for f in findings] == ["run_status", "listing_drop"]
    [post] = receiver.posts
    assert post["path"] == f"/hooks/{TOKEN}" and post["type"] == "application/json"
    body = post["json"]
    assert (body["source"], body["run"]) == ("mkt", run.run_id)
    assert body["findings"] == [f.as_dict() for f in findings]
    assert {"source", "run", "check", "severity", "reason", "action"} <= set(body["findings"][0])
    assert "50% fewer than the 20" in body["text"] and "What to do:" in body["text"]
    events = alert_events(db, run)
    assert [e["detail"]["check"] for e in events] == ["listing_drop", "run_status"]
    assert all(e["detail"]["channels"] == ["webhook"] for e in events)
    assert db.runs.find_one({"_id": run.run_id})["events"]["alert"] == 2
    assert TOKEN not in caplog.text and "$TEST_ALERT_HOOK" in caplog.text

    assert alert_on_run(db, run.run_id, config_path=path) == findings
    assert len(receiver.posts) == 1  # already delivered: the team is told once


def test_a_dead_webhook_is_logged_and_does_not_raise(
    archive: Archive, db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = drop_run(archive)
    dead = f"http://127.0.0.1:{free_port()}/hooks/{TOKEN}"  # nothing listens there
    path = config_file(tmp_path, f"  webhook: {{url: '{dead}', timeout: 2}}\n")
    with caplog.at_level(logging.INFO):
        findings = alert_on_run(db, run.run_id, config_path=path)
    assert len(findings) == 2
    assert "webhook http://127.0.0.1: 2 finding(s) not delivered" in caplog.text
    assert "reached no one" in caplog.text
    assert TOKEN not in caplog.text
    assert alert_events(db, run) == []  # not delivered: not recorded, tried again next time


def test_a_webhook_url_from_a_missing_variable_is_logged(
    archive: Archive, db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = drop_run(archive)
    path = config_file(tmp_path, "  webhook: {url: {env: TEST_ALERT_HOOK_UNSET}}\n")
    assert len(alert_on_run(db, run.run_id, config_path=path)) == 2
    assert "needs environment variable TEST_ALERT_HOOK_UNSET" in caplog.text


def test_email_over_smtp_with_login(
    archive: Archive, db: Database, smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box, port = smtp
    run = drop_run(archive)
    secret = tmp_path / "smtp-password"
    secret.write_text("mail-pass\n")
    path = config_file(
        tmp_path,
        f"  email:\n    host: 127.0.0.1\n    port: {port}\n    from: archive@example.org\n"
        "    to: [team@example.org, oncall@example.org]\n    username: darkarchive\n"
        f"    password: {{file: {secret}}}\n    timeout: 5\n",
    )
    findings = alert_on_run(db, run.run_id, config_path=path)
    assert box.logins == [(b"darkarchive", b"mail-pass")]
    [mail] = box.mails
    assert mail.mail_from == "archive@example.org"
    assert mail.rcpt_tos == ["team@example.org", "oncall@example.org"]
    message = message_from_bytes(mail.content, policy=policy.default)
    assert (
        message["Subject"] == f"[darkarchive] mkt: 2 alert(s), 0 warning(s) after run {run.run_id}"
    )
    text = message.get_content()  # type: ignore[attr-defined]
    for finding in findings:
        assert finding.reason in text and finding.action in text
    assert [e["detail"]["channels"] for e in alert_events(db, run)] == [["email"], ["email"]]


def test_email_with_starttls(
    archive: Archive,
    db: Database,
    tls_smtp: tuple[Mailbox, int, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    box, port, cert = tls_smtp
    run = drop_run(archive)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "mail-pass")
    email = (
        f"  email:\n    host: 127.0.0.1\n    port: {port}\n    from: archive@example.org\n"
        "    to: [team@example.org]\n    username: darkarchive\n"
        "    password: {env: TEST_SMTP_PASSWORD}\n    starttls: true\n    timeout: 5\n"
    )
    unverified = config_file(tmp_path, email)  # the system's CAs do not know this cert
    assert len(alert_on_run(db, run.run_id, config_path=unverified)) == 2
    assert box.mails == [] and "CERTIFICATE_VERIFY_FAILED" in caplog.text
    trusted = config_file(tmp_path, email + f"    ca_file: {cert}\n")
    alert_on_run(db, run.run_id, config_path=trusted)
    assert box.logins == [(b"darkarchive", b"mail-pass")]
    assert len(box.mails) == 1
    assert "mail-pass" not in caplog.text


def test_notify_command_runs_once_per_finding(
    archive: Archive, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = drop_run(archive)
    script, out = tmp_path / "notify.py", tmp_path / "told.jsonl"
    script.write_text(
        "import json, os, sys\n"
        "keys = [k for k in os.environ if k.startswith('DARKARCHIVE_')]\n"
        "with open(sys.argv[1], 'a') as f:\n"
        "    f.write(json.dumps({k: os.environ[k] for k in keys}) + '\\n')\n"
    )
    monkeypatch.setenv("DARKARCHIVE_NOTIFY_COMMAND", f"{sys.executable} {script} {out}")
    path = tmp_path / "alerts.yaml"
    path.write_text("notify:\n  min_severity: alert\n")
    findings = alert_on_run(db, run.run_id, config_path=path)
    told = [json.loads(line) for line in out.read_text().splitlines()]
    assert [t["DARKARCHIVE_CHECK"] for t in told] == [f.check for f in findings]
    first = told[0]
    assert (first["DARKARCHIVE_EVENT"], first["DARKARCHIVE_SOURCE"]) == ("alert", "mkt")
    assert first["DARKARCHIVE_RUN"] == run.run_id
    assert first["DARKARCHIVE_SEVERITY"] == "alert"
    assert first["DARKARCHIVE_REASON"] == findings[0].reason
    assert first["DARKARCHIVE_ACTION"] == findings[0].action
    assert [e["detail"]["channels"] for e in alert_events(db, run)] == [["command"], ["command"]]


def test_warnings_stay_in_the_log_when_only_alerts_are_sent(
    archive: Archive, db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    run = archive.open_run("mkt", parser_version="p1", started_at=T0)
    pages = {"index": 2, "listing": 10, "captcha": 8}
    archive.close_run(run, status="complete", counts={"pages": 20, "pages_by_state": pages})
    path = config_file(tmp_path, f"  min_severity: alert\n  webhook: {{url: '{receiver.url}'}}\n")
    findings = alert_on_run(db, run.run_id, config_path=path)
    assert [(f.check, f.severity) for f in findings] == [("challenge_rate", "warning")]
    assert receiver.posts == []
    assert alert_events(db, run) == []


def test_the_log_never_shows_a_webhook_path() -> None:
    shown = webhook_target(WebhookNotifier(url=f"https://hooks.example.org/services/{TOKEN}"))
    assert shown == "webhook https://hooks.example.org"
