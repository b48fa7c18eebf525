"""Tor for the CLI: start or check it for a crawl (`tor_for`), and `darkarchive tor check`."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from crawler.sources.model import Source
    from crawler.tor.endpoint import TorEndpoint


@contextmanager
def tor_for(source: Source, endpoint: TorEndpoint | None = None) -> Iterator[dict[str, Any]]:
    """The crawl settings that route `source` through Tor, for as long as the crawl runs.

    A clearnet source needs none. For a Tor source, tor is started (managed) or checked
    (external) first; if that fails the settings carry the reason instead, so the crawl
    fetches nothing and its run records why.
    """
    if source.network != "tor":
        yield {}
        return
    if endpoint is not None:  # a tor somebody else runs for us (the private demo network)
        yield endpoint.settings()
        return
    from crawler.tor.config import TorConfigError, load_tor_config
    from crawler.tor.control import TorUnavailable
    from crawler.tor.service import open_tor, show_progress

    with ExitStack() as stack:
        try:
            config = load_tor_config()
            print(f"tor: {config.mode} mode, waiting for bootstrap", file=sys.stderr)
            ready = stack.enter_context(open_tor(config, show_progress))
        except (TorUnavailable, TorConfigError) as exc:
            print(f"darkarchive: no usable Tor: {exc}", file=sys.stderr)
            yield {"TOR_UNAVAILABLE": f"no usable Tor: {exc}"}
            return
        yield ready.settings()


def cmd_tor_check(args: argparse.Namespace) -> int:
    """Bootstrap state, circuits per source and the path of a test fetch, for the team."""
    from crawler.sources.loader import load_source
    from crawler.tor.config import TorConfigError, load_tor_config
    from crawler.tor.control import TorControl, TorUnavailable
    from crawler.tor.service import open_tor, show_progress

    sources = [load_source(s) for s in args.source]
    try:
        config = load_tor_config()
        print(f"tor: {config.mode} mode")
        with open_tor(config, show_progress) as endpoint, TorControl.connect(endpoint) as control:
            print(f"tor {control.version()}: bootstrapped {control.bootstrap()}")
            print(f"SOCKS {endpoint.socks}; control {endpoint.control}")
            flags = control.socks_flags()
            if not any("ExtendedErrors" in line for line in flags):
                print(f"warning: SocksPort {flags} lacks ExtendedErrors: onion errors are vague")
            ok = True
            for username, url in _test_fetches(args, sources):
                ok &= _test_fetch(endpoint, control, username, url, args.timeout)
            _print_circuits(control)
            return 0 if ok else 1
    except (TorUnavailable, TorConfigError) as exc:
        print(f"darkarchive: Tor is not usable: {exc}", file=sys.stderr)
        return 1


def _test_fetches(args: argparse.Namespace, sources: list[Source]) -> list[tuple[str, str]]:
    fetches = [(source.socks_username, source.mirrors[0] + "/") for source in sources]
    if args.url:
        fetches.append(("darkarchive-check", args.url))
    return fetches


def _test_fetch(
    endpoint: TorEndpoint, control: Any, username: str, url: str, timeout: float
) -> bool:
    """GET `url` through Tor as `username`; print the status and the circuit it used."""
    import httpx2

    from crawler.tor.socks_errors import classify, teach_socks_client

    teach_socks_client()
    started = time.monotonic()
    try:
        with httpx2.Client(proxy=endpoint.proxy_for(username), timeout=timeout) as client:
            response = client.get(url)
    except httpx2.HTTPError as exc:
        failure = classify(exc)
        print(f"{username}: GET {url} failed: {failure.reason if failure else exc}")
        return False
    elapsed = time.monotonic() - started
    print(f"{username}: GET {url} -> HTTP {response.status_code} in {elapsed:.1f} s")
    for circuit in control.circuits_by_username().get(username, []):
        hops = " > ".join(circuit.path)
        print(f"  circuit {circuit.id} ({circuit.purpose}): {hops}; last hop {circuit.path[-1]}")
    return True


def _print_circuits(control: Any) -> None:
    groups = control.circuits_by_username()
    print(f"circuits per SOCKS username (isolation groups): {len(groups)}")
    for username, circuits in sorted(groups.items()):
        ids = ", ".join(c.id for c in circuits)
        print(f"  {username}: {len(circuits)} circuit(s) [{ids}]")
