"""Running darkarchive as the team does (its own process), and checking what it left running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def run_cli(*args: str, env: dict[str, str], code: int = 0) -> subprocess.CompletedProcess[str]:
    """`darkarchive <args>` in its own process; it must exit with `code` (0: success)."""
    result = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == code, f"{args} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line mentions `text` (a data folder): what a test left running."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(proc.name))
    return found


def start_crawl(env: dict[str, str], url: str, *args: str) -> subprocess.Popen[str]:
    """`darkarchive crawl demo --mirror URL` started in its own process, output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
         "--mirror", url, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def wait_for(condition: Any, timeout: float = 120.0) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
