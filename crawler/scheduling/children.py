"""A scheduled crawl: `darkarchive crawl <source>` as a child process of the scheduler."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

logger = logging.getLogger(__name__)

# The summary line `darkarchive crawl` prints: "run demo:000004: complete".
RUN_LINE = re.compile(r"^run (?P<run>[^\s:]+:\d+): (?P<status>\w+)")


def crawl_command(source: str, args: Sequence[str], *, log_level: str) -> list[str]:
    """The child's command line: this Python, this darkarchive."""
    return [sys.executable, "-m", "crawler.cli", "--log-level", log_level, "crawl", source, *args]


class CrawlChild:
    """One running crawl. Its stdout is logged line by line and read for the run id; its
    stderr (Scrapy's log) goes where the scheduler's goes.

    The child has a session of its own, so a Ctrl-C in the scheduler's terminal reaches only
    the scheduler, which then asks each crawl once, with SIGTERM, to stop (a second signal
    makes Scrapy stop uncleanly).
    """

    def __init__(
        self,
        source: str,
        command: Sequence[str],
        env: Mapping[str, str],
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self._on_exit = on_exit
        self.command = list(command)
        self.started_at = datetime.now(UTC)
        self.run_id: str | None = None
        self.run_status: str | None = None
        self.message: str | None = None  # its last "darkarchive: …" line (why it refused…)
        self.page_budget: int | None = None  # the CLOSESPIDER_PAGECOUNT it was given
        self.args: list[str] = []  # what followed `crawl <source>`
        self.stop_requested = False
        self._proc = subprocess.Popen(
            self.command,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self._reader = threading.Thread(
            target=self._read_stdout, name=f"crawl-{source}", daemon=True
        )
        self._reader.start()
        logger.info("started crawl of %s (pid %d): %s", source, self.pid, " ".join(command[3:]))

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.rstrip()
            logger.info("%s | %s", self.source, line)
            if line.startswith("darkarchive: "):
                self.message = line
            match = RUN_LINE.match(line)
            if match is not None and match.group("run").startswith(f"{self.source}:"):
                self.run_id, self.run_status = match.group("run"), match.group("status")
        if self._on_exit is not None:  # end of output: the crawl is ending, wake the scheduler
            self._on_exit()

    def poll(self) -> int | None:
        """The exit code once the crawl has ended (its output read to the end), else None."""
        if not self._reader.is_alive():  # its output is closed: it is ending, if not gone
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
        code = self._proc.poll()
        if code is not None:
            self._reader.join(timeout=5)
        return code

    def terminate(self) -> None:
        """Ask the crawl to stop: it closes its run as interrupted."""
        self.stop_requested = True
        if self._proc.poll() is None:
            logger.info("asking the crawl of %s (pid %d) to stop", self.source, self.pid)
            self._proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """The crawl and whatever it started, at once."""
        if self._proc.poll() is None:
            logger.warning("killing the crawl of %s (pid %d)", self.source, self.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
