"""Fail closed: a Tor source with no working Tor fetches nothing, says why, and leaks nothing.

The crawl runs in its own network namespace, where only loopback exists, with an audit hook
(PEP 578) in every Python process of the crawl that logs each connect, name lookup and
datagram, and each port a process listens on. The test then checks that the only
connections went to the SOCKS port or to a port the crawl's own processes listen on (its
embedded database), that no name was looked up (least of all the onion address), and that
the run in the archive says why.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pymongo
import pytest

from crawler.sources.loader import load_source
from pipelines.store.embedded import EmbeddedMongo

PROJECT_ROOT = Path(__file__).resolve().parents[1]

AUDIT_HOOK = """
import json, os, sys

_LOG = os.environ["DARKARCHIVE_AUDIT_LOG"]
_EVENTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
           "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.sendto",
           "socket.sendmsg", "socket.bind"}

def _hook(event, args):
    if event not in _EVENTS:
        return
    if event in ("socket.connect", "socket.bind", "socket.sendto"):
        address = args[-1]
    elif event == "socket.sendmsg":
        address = args[-1] if len(args) > 1 else None
    else:
        address = args[0]
    line = json.dumps({"pid": os.getpid(), "event": event, "address": repr(address)})
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(line + "\\n")

sys.addaudithook(_hook)

import socket as _socket

_listen = _socket.socket.listen


def _logged_listen(sock, *args):
    # No audit event says which port a server got for port 0: log it when it listens.
    _listen(sock, *args)
    line = json.dumps({"pid": os.getpid(), "event": "listen", "address": repr(sock.getsockname())})
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(line + "\\n")


_socket.socket.listen = _logged_listen
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_isolated(
    args: list[str], tmp_path: Path, env_extra: dict[str, str]
) -> list[dict[str, Any]]:
    """Run a command in a fresh network namespace (loopback only) and return its audit log."""
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(AUDIT_HOOK, encoding="utf-8")
    log = tmp_path / "audit.jsonl"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MONGODB_URI", "MONGODB_URI_FILE")
    }
    env.update(
        {
            "PYTHONPATH": f"{hook_dir}{os.pathsep}{PROJECT_ROOT}",
            "DARKARCHIVE_AUDIT_LOG": str(log),
            "DARKARCHIVE_HOME": str(tmp_path / "home"),
            # The shared database stops with its last client, inside the namespace.
            "DARKARCHIVE_DB_IDLE": "0",
            **env_extra,
        }
    )
    script = 'ip link set lo up && exec "$@"'
    result = subprocess.run(
        ["unshare", "--net", "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=PROJECT_ROOT,
    )
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    lines = log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _address(event: dict[str, Any]) -> Any:
    from ast import literal_eval

    try:
        return literal_eval(event["address"])
    except (ValueError, SyntaxError):
        return event["address"]


def _check_no_leak(events: list[dict[str, Any]], socks_port: int, onion: str) -> None:
    listening = {
        address[1]
        for e in events
        if e["event"] == "listen" and isinstance(address := _address(e), tuple)
    }
    connects = [
        address
        for e in events
        if e["event"] == "socket.connect" and isinstance(address := _address(e), tuple)
    ]
    assert ("127.0.0.1", socks_port) in connects, "the crawl never tried Tor's SOCKS port"
    for host, port, *_ in connects:
        assert host in ("127.0.0.1", "::1"), f"connection to {host}:{port} left loopback"
        assert port == socks_port or port in listening, f"connection to {host}:{port}"
    lookups = [e for e in events if e["event"].startswith(("socket.geth", "socket.getaddrinfo"))]
    for lookup in lookups:
        name = str(_address(lookup))
        assert name in ("127.0.0.1", "::1", "localhost", "None", "b'127.0.0.1'"), lookup
    assert not any(onion in e["address"] for e in events), "the onion name reached a socket call"
    datagrams = [e for e in events if e["event"] in ("socket.sendto", "socket.sendmsg")]
    assert datagrams == [], datagrams


def _archive(tmp_path: Path) -> Any:
    """The crawl's own embedded archive, opened again after the crawl has ended."""
    return EmbeddedMongo(tmp_path / "home" / "mongo")


def test_unreachable_tor_fetches_nothing_records_why_and_leaks_nothing(tmp_path: Path) -> None:
    socks = _free_port()  # nothing listens there: Tor is "stopped"
    config = tmp_path / "tor.yaml"
    config.write_text(f"mode: external\nexternal: {{socks: 127.0.0.1:{socks}, control: null}}\n")
    events = _run_isolated(
        [sys.executable, "-m", "crawler.cli", "crawl", "demo-onion"],
        tmp_path,
        {"DARKARCHIVE_TOR_CONFIG": str(config)},
    )
    onion = load_source("demo-onion").mirrors[0].removeprefix("http://")
    _check_no_leak(events, socks, onion)
    with _archive(tmp_path) as server, pymongo.MongoClient(server.uri) as client:
        db = client["darkarchive"]
        run = db.runs.find_one({"_id": "demo-onion:000001"})
        assert run["status"] == "failed"
        assert f"Tor's SOCKS port 127.0.0.1:{socks} is not reachable" in run["reasons"][0]
        assert db.pages.count_documents({}) == 0


def test_tor_that_stops_answering_stops_the_crawl_without_a_leak(tmp_path: Path) -> None:
    """`scrapy crawl` skips the CLI's check: the routing itself must fail closed."""
    socks = _free_port()
    events = _run_isolated(
        [
            sys.executable, "-m", "scrapy", "crawl", "market", "-a", "source=demo-onion",
            "-s", f"TOR_SOCKS=127.0.0.1:{socks}", "-s", "LOG_LEVEL=WARNING",
        ],
        tmp_path,
        {},
    )  # fmt: skip
    onion = load_source("demo-onion").mirrors[0].removeprefix("http://")
    _check_no_leak(events, socks, onion)
    with _archive(tmp_path) as server, pymongo.MongoClient(server.uri) as client:
        db = client["darkarchive"]
        run = db.runs.find_one({"_id": "demo-onion:000001"})
        assert run["status"] == "failed", run
        assert any("tor_unavailable" in reason for reason in run["reasons"]), run["reasons"]
        tor_events = [e["reason"] for e in db.run_events.find({"kind": "tor"})]
        assert any("Tor stopped answering" in reason for reason in tor_events), tor_events
        pages = list(db.pages.find({}))
        assert [p["state"] for p in pages] == ["error"]
        assert all(p.get("status") is None for p in pages), "no response can have come back"


@pytest.mark.parametrize("tool", ["unshare", "ip"])
def test_the_isolation_tools_are_there(tool: str) -> None:
    """CI installs them (util-linux, iproute2); without them the tests above prove nothing."""
    assert shutil.which(tool), f"{tool} is missing"
