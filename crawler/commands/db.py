"""`darkarchive db start|stop|status`: the embedded database as a shared local service."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crawler.commands.shared import home

if TYPE_CHECKING:
    import argparse
    from pathlib import Path


def _data_dir() -> Path:
    return home() / "mongo"


def _configured_elsewhere() -> bool:
    from pipelines.store.connect import configured_uri

    if configured_uri() is None:
        return False
    print("MONGODB_URI is set: darkarchive uses that server, no embedded one", file=sys.stderr)
    return True


def cmd_db_start(args: argparse.Namespace) -> int:
    from pipelines.store.service import ensure_service

    if _configured_elsewhere():
        return 0
    info, registration = ensure_service(_data_dir())
    registration.release()
    print(
        f"embedded database running: supervisor pid {info.pid}, {info.uri}, data in "
        f"{_data_dir()}; stops after {info.idle_timeout:.0f} s without a client"
    )
    return 0


def cmd_db_stop(args: argparse.Namespace) -> int:
    from pipelines.store.service import live_clients, stop_service

    if _configured_elsewhere():
        return 0
    clients = live_clients(_data_dir()) if _data_dir().is_dir() else []
    info = stop_service(_data_dir())
    if info is None:
        print(f"no embedded database runs on {_data_dir()}")
        return 0
    busy = f"; {len(clients)} command(s) were still using it: {clients}" if clients else ""
    print(f"embedded database stopped (supervisor pid {info.pid}){busy}")
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    """Exit 0 when a server runs, 1 when none does (scripts can test it)."""
    from pipelines.store.service import live_clients, running_service

    if _configured_elsewhere():
        return 0
    data = _data_dir()
    info = running_service(data) if data.is_dir() else None
    if info is None:
        print(f"no embedded database runs on {data}")
        return 1
    started = datetime.fromisoformat(info.started_at)
    uptime = (datetime.now(UTC) - started).total_seconds()
    clients = live_clients(data)
    print(f"embedded database on {data}")
    print(f"  uri: {info.uri}  supervisor pid {info.pid}, server pid {info.server_pid}")
    print(f"  up {uptime:.0f} s since {info.started_at}")
    print(f"  clients: {len(clients)} {clients if clients else ''}".rstrip())
    idle = f"after {info.idle_timeout:.0f} s without a client"
    print(f"  stops {'when the last client leaves' if info.idle_timeout == 0 else idle}")
    return 0
