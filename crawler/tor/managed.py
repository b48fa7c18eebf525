"""A tor that darkarchive starts for a crawl and always stops again (managed mode)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.tor.control import TorUnavailable
from crawler.tor.endpoint import TorEndpoint

if TYPE_CHECKING:
    from collections.abc import Mapping

logger = logging.getLogger(__name__)

START_TIMEOUT = 30.0


def free_port() -> int:
    """A loopback port nothing listens on now (tor takes it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ManagedTorProcess:
    """One `tor` process on loopback ports it picks itself, owned by this process.

    `__OwningControllerProcess` makes tor exit by itself if darkarchive dies, and `stop()`
    (also run at exit) ends it by PID: a crawl never leaves a tor behind.
    """

    def __init__(
        self, data_dir: Path, *, binary: str = "tor", options: Mapping[str, str | list[str]] = {}
    ) -> None:
        self.data_dir = data_dir
        self.binary = binary
        self.options = dict(options)
        self.process: subprocess.Popen[bytes] | None = None
        self.socks_port = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "notice.log"

    def torrc(self) -> str:
        lines = {
            "DataDirectory": str(self.data_dir),
            "SocksPort": f"127.0.0.1:{self.socks_port} ExtendedErrors IsolateSOCKSAuth",
            # The control port is chosen by tor and read back from the file it writes.
            "ControlPort": "127.0.0.1:auto",
            "ControlPortWriteToFile": str(self.data_dir / "control-port"),
            "CookieAuthentication": "1",
            "__OwningControllerProcess": str(os.getpid()),
            "Log": f"notice file {self.log_path}",
            "RunAsDaemon": "0",
            "ShutdownWaitLength": "0",
            "AvoidDiskWrites": "1",
        }
        text = [f"{key} {value}" for key, value in lines.items()]
        for key, value in self.options.items():
            for item in value if isinstance(value, list) else [value]:
                text.append(f"{key} {item}")
        return "\n".join(text) + "\n"

    def start(self) -> TorEndpoint:
        """Launch tor and return its endpoint once its control port answers (not bootstrapped)."""
        executable = shutil.which(self.binary)
        if executable is None:
            raise TorUnavailable(
                f"no {self.binary!r} executable found: install Debian's tor (apt-get install tor)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)  # tor refuses a data folder others can read
        (self.data_dir / "control-port").unlink(missing_ok=True)
        self.socks_port = free_port()
        torrc = self.data_dir / "torrc"
        torrc.write_text(self.torrc(), encoding="utf-8")
        with (self.data_dir / "stdout.log").open("wb") as output:  # tor keeps its own copy
            self.process = subprocess.Popen(
                [executable, "-f", str(torrc), "--defaults-torrc", os.devnull],
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)
        logger.info("tor started (pid %d, data %s)", self.process.pid, self.data_dir)
        try:
            control = self._wait_for_file("control-port").removeprefix("PORT=")
        except TorUnavailable:
            self.stop()
            raise
        return TorEndpoint(
            socks=f"127.0.0.1:{self.socks_port}",
            control=control,
            cookie_file=str(self.data_dir / "control_auth_cookie"),
        )

    def _wait_for_file(self, name: str) -> str:
        assert self.process is not None
        path = self.data_dir / name
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TorUnavailable(
                    f"tor exited with status {self.process.returncode}: {self._tail()}"
                )
            if path.is_file() and path.read_text().strip():
                return path.read_text().strip().splitlines()[0]
            time.sleep(0.05)
        raise TorUnavailable(f"tor did not open its ports within {START_TIMEOUT:.0f} s")

    def _tail(self) -> str:
        """The last lines tor wrote: why it refused to start, in its own words."""
        text = ""
        for path in (self.data_dir / "stdout.log", self.log_path):
            if path.is_file():
                text += path.read_text(encoding="utf-8", errors="replace")
        lines = [line for line in text.splitlines() if "[warn]" in line or "[err]" in line]
        return " | ".join((lines or text.splitlines() or ["no output"])[-3:])

    def stop(self) -> None:
        """Idempotent: SIGTERM, then SIGKILL if tor has not gone within 5 s."""
        process, self.process = self.process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        logger.info("tor stopped (pid %d)", process.pid)
