"""The embedded database's supervisor: one per data folder, run detached by `service.py`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pipelines.store.embedded import EmbeddedMongo, EmbeddedMongoError
from pipelines.store.service import (
    DEFAULT_IDLE,
    POLL,
    STATE_FILE,
    ServiceInfo,
    live_clients,
    pid_alive,
    service_lock,
)

logger = logging.getLogger(__name__)


def serve(data_dir: Path, idle: float) -> int:
    """The supervisor: run the server until asked to stop or idle for `idle` seconds."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = EmbeddedMongo(data_dir, die_with_parent=True).start()
    except EmbeddedMongoError as exc:
        logger.error("%s", exc)
        return 1
    ServiceInfo(
        pid=os.getpid(),
        server_pid=server.pid or 0,
        uri=server.uri,
        started_at=datetime.now(UTC).isoformat(),
        idle_timeout=idle,
    ).write(data_dir)
    logger.info("serving %s on %s (idle timeout %.0f s)", data_dir, server.uri, idle)
    last_busy = time.monotonic()
    try:
        while not stop.wait(POLL):
            if server.pid is None or not pid_alive(server.pid):
                logger.error("the database server (pid %s) died; the supervisor ends", server.pid)
                return 1
            if live_clients(data_dir):
                last_busy = time.monotonic()
            elif idle and time.monotonic() - last_busy >= idle:
                with service_lock(data_dir):
                    if not live_clients(data_dir):  # nobody registered meanwhile
                        logger.info("idle for %.0f s with no client; stopping", idle)
                        _shutdown(server, data_dir)
                        return 0
        logger.info("asked to stop")
        return 0
    finally:
        _shutdown(server, data_dir)


def _shutdown(server: EmbeddedMongo, data_dir: Path) -> None:
    server.stop()
    info = ServiceInfo.read(data_dir)
    if info is not None and info.pid == os.getpid():
        (data_dir / STATE_FILE).unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return serve(Path(argv[0]).resolve(), float(argv[1]) if len(argv) > 1 else DEFAULT_IDLE)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
