"""The embedded database as a shared local service: started once, reused, stopped when idle.

Every darkarchive command that needs the embedded archive connects to one server per data
folder, so `runs`, `export` or a crawl of another source work while a crawl runs. The
server belongs to a small supervisor process (`pipelines/store/supervisor.py`),
started detached by the first command; the secantus child dies with its supervisor
(PR_SET_PDEATHSIG), so a killed command or supervisor never leaves a server holding the
data folder's lock. Commands register as clients (a file named by their PID); the
supervisor stops the server once no live client has been registered for the idle
timeout (`DARKARCHIVE_DB_IDLE` seconds, default 300; 0 means "when the last client
leaves", which the last client then does itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymongo
from pymongo.errors import PyMongoError

from pipelines.store.embedded import DataDirLockedError, EmbeddedMongoError

if TYPE_CHECKING:
    from collections.abc import Iterator

logger = logging.getLogger(__name__)

STATE_FILE = "server.json"
LOCK_FILE = "service.lock"
LOG_FILE = "service.log"
CLIENTS_DIR = "clients"
DEFAULT_IDLE = 300.0
START_TIMEOUT = 45.0
STOP_TIMEOUT = 20.0
POLL = 0.25


def idle_timeout() -> float:
    """`DARKARCHIVE_DB_IDLE` (seconds a server with no client stays up), default 300."""
    raw = os.environ.get("DARKARCHIVE_DB_IDLE", "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_IDLE
    except ValueError:
        raise EmbeddedMongoError(
            f"DARKARCHIVE_DB_IDLE={raw!r} is not a number of seconds"
        ) from None


def pid_alive(pid: int) -> bool:
    """Is `pid` running? A zombie (ended, not yet reaped by its parent) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc here: the signal test is all there is
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass(frozen=True)
class ServiceInfo:
    """What the supervisor writes to `server.json` once its server answers."""

    pid: int  # the supervisor's
    server_pid: int
    uri: str
    started_at: str
    idle_timeout: float

    @classmethod
    def read(cls, data_dir: Path) -> ServiceInfo | None:
        try:
            raw = json.loads((data_dir / STATE_FILE).read_text())
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, data_dir: Path) -> None:
        tmp = data_dir / f".{STATE_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(self.__dict__, indent=2) + "\n")
        tmp.replace(data_dir / STATE_FILE)


@contextlib.contextmanager
def service_lock(data_dir: Path) -> Iterator[None]:
    """Serialises start, stop and registration decisions across processes (flock)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def live_clients(data_dir: Path) -> list[int]:
    """PIDs of registered clients that are alive; files of dead ones are removed."""
    folder = data_dir / CLIENTS_DIR
    alive: list[int] = []
    for entry in folder.glob("*") if folder.is_dir() else []:
        pid = int(entry.name.split("-", 1)[0]) if entry.name.split("-", 1)[0].isdigit() else 0
        if pid and pid_alive(pid):
            alive.append(pid)
        else:
            entry.unlink(missing_ok=True)
    return alive


def _answers(uri: str) -> bool:
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(
        uri, serverSelectionTimeoutMS=1500, connectTimeoutMS=1500
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def running_service(data_dir: Path) -> ServiceInfo | None:
    """The live service on `data_dir`, clearing (with a log line) what a dead one left."""
    info = ServiceInfo.read(data_dir)
    if info is None:
        return None
    if pid_alive(info.pid) and _answers(info.uri):
        return info
    if pid_alive(info.pid):  # alive but not answering: starting, stopping or wedged
        return None
    logger.warning(
        "embedded database on %s: its supervisor (pid %d) is gone; stale record cleared",
        data_dir,
        info.pid,
    )
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    stale = data_dir / "secantus.pid"
    with contextlib.suppress(OSError, ValueError):
        server_pid = int(stale.read_text().strip())
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid_alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # its server got SIGTERM with its supervisor: let it close
        if not pid_alive(server_pid):
            logger.warning("stale server pidfile %s (pid %d gone) cleared", stale, server_pid)
            stale.unlink()
    return None


class ClientRegistration:
    """This process uses the service; released on close (a dead PID releases itself)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        folder = data_dir / CLIENTS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path.write_text(" ".join(sys.argv[:4]) + "\n")

    def release(self) -> None:
        """Unregister; with an idle timeout of 0 the last client stops the service."""
        if not self.path.exists():
            return
        with service_lock(self.data_dir):
            self.path.unlink(missing_ok=True)
            info = ServiceInfo.read(self.data_dir)
            if info is not None and info.idle_timeout == 0 and not live_clients(self.data_dir):
                _stop_supervisor_pid(info.pid)


def ensure_service(data_dir: Path) -> tuple[ServiceInfo, ClientRegistration]:
    """Connect to the data folder's service, starting it if none runs; registers a client."""
    with service_lock(data_dir):
        info = running_service(data_dir)
        if info is None:
            info = _start_supervisor(data_dir)
        return info, ClientRegistration(data_dir)


def _start_supervisor(data_dir: Path) -> ServiceInfo:
    idle = idle_timeout()
    log_path = data_dir / LOG_FILE
    offset = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.store.supervisor", str(data_dir), str(idle)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not in the command's process group: Ctrl-C is not for it
            cwd=data_dir,
            env={**os.environ, "PYTHONPATH": _project_path()},
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        info = ServiceInfo.read(data_dir)
        if info is not None and info.pid == proc.pid:
            logger.info("embedded database started (supervisor pid %d) at %s", proc.pid, info.uri)
            return info
        if proc.poll() is not None:
            tail = _log_tail(log_path, offset)
            if "holds" in tail and "another darkarchive/secantus process" in tail:
                raise DataDirLockedError(tail.strip().splitlines()[-1])
            raise EmbeddedMongoError(
                f"the embedded database on {data_dir} did not start (status {proc.returncode});"
                f" its log {log_path} ends:\n{tail}"
            )
        time.sleep(0.05)
    _stop_supervisor_pid(proc.pid)
    raise EmbeddedMongoError(f"the embedded database on {data_dir} did not start in time")


def _project_path() -> str:
    """The supervisor imports this package even when the command ran from elsewhere."""
    root = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH", "")
    return f"{root}{os.pathsep}{existing}" if existing else root


def _log_tail(path: Path, offset: int) -> str:
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read()[-4000:].decode("utf-8", "replace")
    return ""


def stop_service(data_dir: Path) -> ServiceInfo | None:
    """Stop the data folder's service (whatever its clients); returns what was stopped."""
    with service_lock(data_dir):
        info = running_service(data_dir) or ServiceInfo.read(data_dir)
        if info is None or not pid_alive(info.pid):
            return None
        _stop_supervisor_pid(info.pid)
        return info


def _stop_supervisor_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if pid_alive(pid):
        logger.warning("embedded database supervisor pid %d ignored SIGTERM; killing it", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)


def _reap(pid: int) -> None:
    """A supervisor started by this very process is our child: collect its exit status."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
