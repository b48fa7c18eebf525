"""Left alone, the scheduler's crawls tell the team: a webhook receiver on loopback gets an
alert for a template drift and for a planted drop in listings, with source, run and reason."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from subprocesses import run_cli

from crawler.sources.loader import DEFAULT_SOURCES_DIR
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from pathlib import Path

    from pipelines.store.embedded import EmbeddedMongo


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint on loopback that keeps what it was sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                server.received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def findings(self, source: str) -> list[dict[str, Any]]:
        return [f for post in self.received if post["source"] == source for f in post["findings"]]


def _sources(tmp_path: Path) -> Path:
    """The demo source, and `drift`: the same market read with a vendor selector that no
    longer matches, as after a market changed its templates."""
    sources = tmp_path / "sources"
    shutil.copytree(DEFAULT_SOURCES_DIR, sources)
    demo = (sources / "demo.yaml").read_text(encoding="utf-8")
    drifted = demo.replace("id: demo\n", "id: drift\n").replace(
        'name: {css: "h1.vendor-name::text"', 'name: {css: "h1.seller-title::text"'
    )
    assert drifted != demo and "id: drift" in drifted
    (sources / "drift.yaml").write_text(drifted, encoding="utf-8")
    return sources


def _schedule(path: Path, url: str, demo_args: list[str]) -> None:
    path.write_text(
        "max_concurrent: 2\n"
        "sources:\n"
        f"  demo: {{every: 1s, mirror: '{url}', args: {json.dumps(demo_args)}}}\n"
        f"  drift: {{every: 1s, mirror: '{url}'}}\n",
        encoding="utf-8",
    )


def _env(mongo_server: EmbeddedMongo, tmp_path: Path, hook: str) -> dict[str, str]:
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(
        f"notify:\n  min_severity: alert\n  command: {{enabled: false}}\n"
        f"  webhook: {{url: '{hook}', timeout: 5}}\n",
        encoding="utf-8",
    )
    return {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"alerts_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
        "DARKARCHIVE_SOURCES_DIR": str(_sources(tmp_path)),
        "DARKARCHIVE_SCHEDULES": str(tmp_path / "schedules.yaml"),
        "DARKARCHIVE_ALERTS_CONFIG": str(alerts),
    }


def test_scheduled_crawls_alert_a_webhook_on_template_drift_and_a_listing_drop(
    mongo_server: EmbeddedMongo, tmp_path: Path
) -> None:
    with Receiver() as receiver, FixtureServer(market="demo", day=1) as market:
        env = _env(mongo_server, tmp_path, receiver.url)
        _schedule(tmp_path / "schedules.yaml", market.url, [])
        run_cli("scheduler", "--once", "--tick", "0.2", env=env, code=1)  # drift failed
        assert receiver.findings("demo") == [], "a complete first run needs no one"
        drift = {f["check"]: f for f in receiver.findings("drift")}
        assert "template_drift" in drift, receiver.received
        assert drift["template_drift"]["run"] == "drift:000001"
        assert "template drift on vendor pages" in drift["template_drift"]["reason"]
        assert drift["template_drift"]["action"]

        # The next crawl of demo stops after 100 pages: far fewer listings than before.
        _schedule(tmp_path / "schedules.yaml", market.url, ["-s", "CLOSESPIDER_PAGECOUNT=100"])
        run_cli("scheduler", "--once", "--tick", "0.2", env=env, code=1)
    drop = {f["check"]: f for f in receiver.findings("demo")}
    assert "listing_drop" in drop, receiver.received
    assert drop["listing_drop"]["run"] == "demo:000002"
    assert (
        "fewer than the 340 of the last complete run demo:000001"
        in (drop["listing_drop"]["reason"])
    )
    posted = [p for p in receiver.received if p["source"] == "demo"]
    assert posted[0]["run"] == "demo:000002" and posted[0]["text"]
