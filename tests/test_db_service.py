"""The embedded database as a shared service: reused, idle-stopped, never orphaned."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
from subprocesses import processes_mentioning

from pipelines.store.connect import open_database
from pipelines.store.service import ServiceInfo, live_clients, pid_alive

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.delenv("MONGODB_URI_FILE", raising=False)


def _gone(pids: list[int], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _cli(home: Path, *args: str, idle: str = "60") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "MONGODB_URI_FILE")}
    env.update({"DARKARCHIVE_HOME": str(home), "DARKARCHIVE_DB_IDLE": idle})
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_commands_share_one_server_which_stops_when_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded: None
) -> None:
    monkeypatch.setenv("DARKARCHIVE_DB_IDLE", "1")
    with open_database(data_dir=tmp_path) as first, open_database(data_dir=tmp_path) as second:
        assert first.uri_redacted == second.uri_redacted
        info = ServiceInfo.read(tmp_path)
        assert info is not None
        assert sorted(live_clients(tmp_path)) == [os.getpid(), os.getpid()]
        first.db.t.insert_one({"a": 1})
        assert second.db.t.count_documents({}) == 1
    time.sleep(0.5)
    assert pid_alive(info.server_pid), "a server with no client waits out its idle timeout"
    assert _gone([info.pid, info.server_pid])
    assert not (tmp_path / "server.json").exists()


def test_a_killed_supervisor_takes_its_server_along_and_is_cleared(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    embedded: None,
) -> None:
    monkeypatch.setenv("DARKARCHIVE_DB_IDLE", "0")
    with open_database(data_dir=tmp_path) as conn:
        conn.db.t.insert_one({"kept": True})
        info = ServiceInfo.read(tmp_path)
        assert info is not None
        os.kill(info.pid, signal.SIGKILL)
        assert _gone([info.server_pid]), "the server outlived its supervisor"
    assert not processes_mentioning(str(tmp_path))
    with caplog.at_level(logging.WARNING), open_database(data_dir=tmp_path) as again:
        assert again.db.t.find_one({}, {"_id": 0}) == {"kept": True}
    assert f"its supervisor (pid {info.pid}) is gone; stale record cleared" in caplog.text


def test_a_client_killed_outright_does_not_keep_the_server_alive(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # The client starts the service itself (idle timeout 1 s) and is registered as it
    # starts: a client started after `db start` raced the idle timeout with its imports.
    code = (
        "import time; from pathlib import Path; from pipelines.store.service import "
        f"ensure_service; ensure_service(Path({str(home / 'mongo')!r})); print('in', flush=True);"
        " time.sleep(60)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "MONGODB_URI_FILE")}
    env.update({"DARKARCHIVE_HOME": str(home), "DARKARCHIVE_DB_IDLE": "1"})
    client = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert client.stdout is not None and client.stdout.readline() == "in\n"
    info = ServiceInfo.read(home / "mongo")
    assert info is not None and info.idle_timeout == 1
    time.sleep(1.5)
    assert pid_alive(info.server_pid), "a registered client keeps the server"
    client.kill()
    client.wait()
    assert _gone([info.pid, info.server_pid])


def test_db_start_status_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _cli(home, "db", "status").returncode == 1
    started = _cli(home, "db", "start")
    assert "embedded database running: supervisor pid" in started.stdout
    status = _cli(home, "db", "status")
    assert status.returncode == 0
    assert "clients: 0" in status.stdout and "stops after 60 s without a client" in status.stdout
    info = ServiceInfo.read(home / "mongo")
    assert info is not None and info.uri in status.stdout
    stopped = _cli(home, "db", "stop")
    assert f"embedded database stopped (supervisor pid {info.pid})" in stopped.stdout
    assert _gone([info.pid, info.server_pid], timeout=5)
    assert _cli(home, "db", "status").returncode == 1
