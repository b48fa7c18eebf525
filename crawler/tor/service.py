"""Tor for the length of a crawl: started (managed) or checked (external), ready or refused."""

from __future__ import annotations

import logging
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.tor.control import TorControl, TorUnavailable
from crawler.tor.endpoint import TorEndpoint
from crawler.tor.managed import ManagedTorProcess
from pipelines.store.connect import darkarchive_home

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from crawler.tor.config import TorConfig
    from crawler.tor.control import Bootstrap

logger = logging.getLogger(__name__)


def show_progress(state: Bootstrap) -> None:
    """Bootstrap progress for a person at a terminal (stderr: stdout may be a data stream)."""
    print(f"tor: bootstrapped {state}", file=sys.stderr, flush=True)


@contextmanager
def open_tor(
    config: TorConfig, on_progress: Callable[[Bootstrap], None] | None = None
) -> Iterator[TorEndpoint]:
    """Yield a bootstrapped Tor's endpoint; raise TorUnavailable rather than yield a bad one."""
    if config.mode == "external":
        external = config.external
        endpoint = TorEndpoint(
            socks=external.socks,
            control=external.control,
            cookie_file=external.cookie_file,
            password=external.password,
        )
        if endpoint.control:
            with TorControl.connect(endpoint) as control:
                control.wait_bootstrapped(config.bootstrap_timeout, on_progress)
        check_socks_port(endpoint.socks)
        yield endpoint
        return
    data_dir = Path(config.managed.data_dir or darkarchive_home() / "tor")
    process = ManagedTorProcess(
        data_dir, binary=config.managed.binary, options=config.managed.options
    )
    try:
        endpoint = process.start()
        with TorControl.connect(endpoint) as control:
            control.wait_bootstrapped(config.bootstrap_timeout, on_progress)
        yield endpoint
    finally:
        process.stop()


def check_socks_port(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to the SOCKS port, nothing sent: is anything listening there?"""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise TorUnavailable(f"Tor's SOCKS port {address} is not reachable: {exc}") from exc
