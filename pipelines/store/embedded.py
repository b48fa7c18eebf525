"""An embedded secantusdb server run as a child process on a data folder."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

import pymongo
from pymongo.errors import PyMongoError

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

logger = logging.getLogger(__name__)

LISTENING = re.compile(r"listening on ([\w.\-\[\]:]+):(\d+)")
LOCKED_MARKERS = ("WiredTiger.lock", "already being managed by another process")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# Written once into a new data folder; the team may edit it. Nothing in darkarchive reads
# the oplog (no change streams, no transactions), so the server runs standalone: it keeps
# no oplog at all and skips one BSON encode and one write per document written. The
# server's default (a single-node replica set keeping 100,000 oplog entries for an hour)
# held a copy of every document a crawl wrote: 126 MB of a 323 MB data folder after six
# demo-large crawls.
CONFIG = """\
# written by darkarchive for its embedded server; flags on the command line set the rest
[server]
# no replica set, hence no oplog: darkarchive uses neither change streams nor transactions
standalone = true
"""
# What earlier versions wrote (a capped oplog); a file still equal to it is brought up to
# date, a file the team edited is left alone.
OLD_CONFIGS = (
    """\
# written by darkarchive for its embedded server; flags on the command line set the rest
[oplog]
retention_seconds = 600
max_entries = 1000
""",
)


def write_config(path: Path) -> None:
    """The server's settings file: written once, or upgraded if darkarchive wrote it."""
    if path.exists() and path.read_text() not in OLD_CONFIGS:
        return
    if path.exists():
        logger.info("updating %s: the embedded server runs standalone, without an oplog", path)
    path.write_text(CONFIG)


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM it when its parent dies (Linux), so a killed
    owner never leaves a server holding the data folder's lock."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedMongoError(RuntimeError):
    """The embedded server could not start; the message carries its last output."""


class DataDirLockedError(EmbeddedMongoError):
    """Another server already holds the data folder's WiredTiger lock."""


class EmbeddedMongo:
    """A secantusdb server owned by this process, stopped on exit whatever happens.

    It runs as a separate process (secantusdb is GPL-2.0-only and must not be imported).
    A pidfile in the data folder names the owner, so a second start on the same folder can
    say who holds it.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cache_size: str = "256M",
        die_with_parent: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.cache_size = cache_size
        self.die_with_parent = die_with_parent
        self.pidfile = data_dir / "secantus.pid"
        self._proc: subprocess.Popen[str] | None = None
        self._output: deque[str] = deque(maxlen=40)
        self._listening = threading.Event()
        self._bound_port: int | None = None

    @property
    def uri(self) -> str:
        if self._bound_port is None:
            raise EmbeddedMongoError("embedded server is not running")
        return f"mongodb://{self.host}:{self._bound_port}/"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> EmbeddedMongo:
        """Start the server and wait until it answers `ping`."""
        if self._proc is not None:
            return self
        # The archive holds what markets showed and the team's provenance: its owner only.
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        # An explicit config disables secantus' auto-discovery of ./secantusd.toml,
        # ~/.secantus/... and /etc/secantus/..., so the server is the same on every machine.
        config = self.data_dir / "secantusd.toml"
        write_config(config)
        cmd = [
            sys.executable,
            "-m",
            "secantus",
            "--config",
            str(config),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--storage-path",
            str(self.data_dir / "db"),
            "--cache-size",
            self.cache_size,
        ]
        logger.info("starting embedded secantusdb on %s", self.data_dir)
        self._proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=self.data_dir,
            preexec_fn=_terminate_with_parent if self.die_with_parent else None,
        )
        atexit.register(self.stop)
        threading.Thread(target=self._read_output, name="secantus-output", daemon=True).start()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.pidfile.write_text(f"{self._proc.pid}\n")
        logger.info("embedded secantusdb pid %d at %s", self._proc.pid, self.uri)
        return self

    def _read_output(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            self._output.append(line.rstrip())
            match = LISTENING.search(line)
            if match and not self._listening.is_set():
                self._bound_port = int(match.group(2))
                self._listening.set()
            logger.debug("secantus: %s", line.rstrip())

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening.wait(0.05):
            if self._proc.poll() is not None:
                self._raise_exited()
            if time.monotonic() > deadline:
                raise EmbeddedMongoError(self._describe("did not report a port in time"))
        client: pymongo.MongoClient = pymongo.MongoClient(
            self.uri, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000
        )
        try:
            while True:
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    if self._proc.poll() is not None:
                        self._raise_exited()
                    if time.monotonic() > deadline:
                        raise EmbeddedMongoError(self._describe("did not answer ping")) from None
                    time.sleep(0.1)
        finally:
            client.close()

    def _raise_exited(self) -> None:
        assert self._proc is not None
        self._proc.wait()
        time.sleep(0.1)  # let the reader thread collect the last lines
        output = "\n".join(self._output)
        if any(marker in output for marker in LOCKED_MARKERS):
            holder = self._pidfile_owner()
            who = f" (pid {holder})" if holder else ""
            raise DataDirLockedError(
                f"another darkarchive/secantus process{who} holds {self.data_dir}; stop it or "
                "use another data folder"
            )
        raise EmbeddedMongoError(self._describe(f"exited with status {self._proc.returncode}"))

    def _pidfile_owner(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def _describe(self, what: str) -> str:
        tail = "\n".join(self._output) or "(no output)"
        return f"embedded secantusdb on {self.data_dir} {what}; last output:\n{tail}"

    def stop(self) -> None:
        """SIGTERM the server by PID, SIGKILL it if it has not exited after STOP_TIMEOUT."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("secantusdb pid %d ignored SIGTERM; killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if self._pidfile_owner() == proc.pid:
            self.pidfile.unlink(missing_ok=True)
        self._bound_port = None
        self._listening.clear()
        logger.info("embedded secantusdb pid %d stopped (status %s)", proc.pid, proc.returncode)

    def __enter__(self) -> EmbeddedMongo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
