"""The team's notify command: one contract for a paused source and for run alerts.

The command line comes from `DARKARCHIVE_NOTIFY_COMMAND` (or a crawl's `NOTIFY_COMMAND`
setting). It runs with the process environment plus `DARKARCHIVE_EVENT`,
`DARKARCHIVE_SOURCE`, `DARKARCHIVE_RUN` and `DARKARCHIVE_REASON` (and, for run alerts,
`DARKARCHIVE_CHECK`, `DARKARCHIVE_SEVERITY` and `DARKARCHIVE_ACTION`).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

logger = logging.getLogger(__name__)

NOTIFY_COMMAND_ENV = "DARKARCHIVE_NOTIFY_COMMAND"


def notify_command(setting: str | None = None) -> str:
    """The command line to run: the setting if given, else the environment's; "" for none."""
    return setting or os.environ.get(NOTIFY_COMMAND_ENV, "")


def start_notify_command(
    command: str,
    *,
    event: str,
    source: str,
    run: str,
    reason: str,
    extra: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the command with what happened in its environment; OSError if it cannot start."""
    env = {
        **os.environ,
        "DARKARCHIVE_EVENT": event,
        "DARKARCHIVE_SOURCE": source,
        "DARKARCHIVE_RUN": run,
        "DARKARCHIVE_REASON": reason,
        **(extra or {}),
    }
    return subprocess.Popen(  # the team's own command, from its environment
        shlex.split(command), env=env, stdin=subprocess.DEVNULL
    )
