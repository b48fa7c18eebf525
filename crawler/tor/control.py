"""Tor's control port through stem: bootstrap state, new identities, circuits per source.

stem is the one library that speaks the control protocol; this module is the only place
that imports it, so the rest of darkarchive speaks of bootstrap and circuits, not of stem.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crawler.session import SessionSecretError, read_secret

if TYPE_CHECKING:
    from collections.abc import Callable

    from stem.control import Controller

    from crawler.tor.endpoint import TorEndpoint

logger = logging.getLogger(__name__)

#: tor delays (it does not refuse) a NEWNYM sent within 10 s of the previous one
NEWNYM_INTERVAL = 10.0
# stem remembers the last NEWNYM per connection only, but callers open a connection per
# NEWNYM: remember it per control port, for the whole process.
_last_newnym: dict[str, float] = {}
_newnym_lock = threading.Lock()

_BOOTSTRAP = re.compile(r'PROGRESS=(\d+) TAG=(\S+) SUMMARY="([^"]*)"(?:.*WARNING="([^"]*)")?')


class TorUnavailable(RuntimeError):
    """Tor cannot carry the crawl (not running, not bootstrapped, refused us): fail closed."""


@dataclass(frozen=True)
class Bootstrap:
    progress: int
    tag: str
    summary: str
    warning: str = ""

    @property
    def done(self) -> bool:
        return self.progress >= 100

    def __str__(self) -> str:
        warning = f" (warning: {self.warning})" if self.warning else ""
        return f"{self.progress}% {self.summary}{warning}"


@dataclass(frozen=True)
class Circuit:
    id: str
    status: str
    purpose: str
    path: tuple[str, ...]  # relay nicknames, guard first
    socks_username: str | None


class TorControl:
    """An authenticated control connection; close it (or use `with`) when done."""

    def __init__(self, controller: Controller, address: str = "") -> None:
        self.controller = controller
        self.address = address  # the control port, "127.0.0.1:9051"

    @classmethod
    def connect(cls, endpoint: TorEndpoint) -> TorControl:
        from stem import SocketError
        from stem.connection import AuthenticationFailure
        from stem.control import Controller

        if not endpoint.control:
            raise TorUnavailable("no Tor control port is configured")
        host, _, port = endpoint.control.rpartition(":")
        try:
            controller = Controller.from_port(address=host.strip("[]"), port=int(port))
        except SocketError as exc:
            raise TorUnavailable(f"Tor's control port {endpoint.control} refused: {exc}") from exc
        try:
            if endpoint.password is not None:
                # Password only: stem's generic authenticate() would fall back to the cookie
                # and hide a wrong password.
                from stem.connection import authenticate_password

                authenticate_password(controller, read_secret(endpoint.password, "Tor control"))
            elif endpoint.cookie_file:
                from stem.connection import authenticate_cookie

                authenticate_cookie(controller, endpoint.cookie_file)
            else:
                controller.authenticate()
        except (AuthenticationFailure, SessionSecretError) as exc:
            controller.close()
            raise TorUnavailable(f"Tor's control port {endpoint.control}: {exc}") from exc
        return cls(controller, endpoint.control)

    def __enter__(self) -> TorControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.controller.close()

    def bootstrap(self) -> Bootstrap:
        from stem import ControllerError

        try:
            phase = self.controller.get_info("status/bootstrap-phase")
        except ControllerError as exc:  # tor exited, or closed the connection
            raise TorUnavailable(
                f"Tor's control port {self.address} stopped answering: {exc}"
            ) from exc
        match = _BOOTSTRAP.search(phase)
        if match is None:
            return Bootstrap(0, "unknown", phase)
        progress, tag, summary, warning = match.groups()
        return Bootstrap(int(progress), tag, summary, warning or "")

    def wait_bootstrapped(
        self, timeout: float, on_progress: Callable[[Bootstrap], None] | None = None
    ) -> Bootstrap:
        """Poll until 100 %; on timeout, fail with how far tor got and its last warning."""
        deadline = time.monotonic() + timeout
        last: Bootstrap | None = None
        while True:
            state = self.bootstrap()
            if on_progress is not None and state != last:
                on_progress(state)
            last = state
            if state.done:
                return state
            if time.monotonic() >= deadline:
                raise TorUnavailable(f"Tor did not bootstrap within {timeout:.0f} s: {state}")
            time.sleep(0.25)

    def new_identity(self) -> float:
        """NEWNYM: fresh circuits for new requests. Waits out tor's 10 s rate limit.

        Returns the seconds waited, so the caller can record it.
        """
        from stem import Signal

        with _newnym_lock:
            last = _last_newnym.get(self.address, float("-inf"))
            wait = max(
                0.0,
                last + NEWNYM_INTERVAL - time.monotonic(),
                self.controller.get_newnym_wait(),
            )
            time.sleep(wait)
            self.controller.signal(Signal.NEWNYM)
            _last_newnym[self.address] = time.monotonic()
        return wait

    def circuits(self) -> list[Circuit]:
        return [
            Circuit(
                id=str(c.id),
                status=str(c.status),
                purpose=str(c.purpose),
                path=tuple(nickname or fingerprint for fingerprint, nickname in c.path),
                socks_username=c.socks_username,
            )
            for c in self.controller.get_circuits()
        ]

    def circuits_by_username(self) -> dict[str, list[Circuit]]:
        """Built circuits per SOCKS username: one group per isolated source."""
        groups: dict[str, list[Circuit]] = {}
        for circuit in self.circuits():
            if circuit.socks_username is not None and circuit.status == "BUILT":
                groups.setdefault(circuit.socks_username, []).append(circuit)
        return groups

    def socks_flags(self) -> list[str]:
        """The SocksPort lines as configured, to warn when ExtendedErrors is missing."""
        return list(self.controller.get_conf("SocksPort", multiple=True) or [])

    def version(self) -> str:
        return str(self.controller.get_version())
