"""The private Tor network on loopback: a real onion service in front of the fixture market.

Everything here is real: 8 tor processes (3 authorities, 3 relays, an onion service tor and
a client), the fixture market over HTTP, and httpx through the client's SOCKS port. The
network is the session's (tests/conftest.py), which also checks that stopping it leaves no
tor behind.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

import httpx2 as httpx
import pytest
import stem.connection
from stem.control import Controller
from subprocesses import pid_alive

from fixtures.server import FixtureServer
from fixtures.tornet import PrivateTorNetwork, TorNetworkError, onion_key

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module")
def market() -> Iterator[FixtureServer]:
    with FixtureServer(market="demo", day=1) as server:
        yield server


@pytest.fixture(scope="module")
def onion(tor_network: PrivateTorNetwork, market: FixtureServer) -> str:
    """The market's onion hostname, once a GET through Tor has answered."""
    key, _ = onion_key("demo-market")
    host = tor_network.add_onion_service(market.bound_port, key=key)
    tor_network.wait_reachable(f"http://{host}/")
    return host


def test_onion_key_is_deterministic_and_well_formed() -> None:
    key, address = onion_key("demo")
    assert (key, address) == onion_key("demo")
    assert onion_key("other") != (key, address)
    # as tor 0.4.9 reported it for an ADD_ONION with this key
    assert address == "uxu6fvdthzsd22todg3utyudsupfmta54tz3hhcvmelinig53kfe6yqd.onion"
    expanded = base64.b64decode(key)
    assert len(expanded) == 64
    assert expanded[0] & 7 == 0 and expanded[31] & 0x80 == 0 and expanded[31] & 0x40
    decoded = base64.b32decode(address.removesuffix(".onion").upper())
    public, checksum, version = decoded[:32], decoded[32:34], decoded[34:]
    assert version == b"\x03"
    assert checksum == hashlib.sha3_256(b".onion checksum" + public + version).digest()[:2]


def test_onion_key_gives_the_address_tor_publishes(
    tor_network: PrivateTorNetwork, market: FixtureServer
) -> None:
    key, address = onion_key("second-service")
    assert tor_network.add_onion_service(market.bound_port, key=key) == address


def test_market_home_page_through_the_onion(
    tor_network: PrivateTorNetwork, market: FixtureServer, onion: str
) -> None:
    assert tor_network.timings["first_get"] > 0
    assert tor_network.timings["keys"] > 0 and tor_network.timings["bootstrap"] > 0
    served = market.requests_served
    with httpx.Client(proxy=tor_network.socks_url, timeout=60, trust_env=False) as client:
        response = client.get(f"http://{onion}/")
    assert response.status_code == 200
    assert "<title>Home | Demo Market</title>" in response.text
    assert market.requests_served == served + 1


def test_socks_usernames_get_their_own_circuits(tor_network: PrivateTorNetwork, onion: str) -> None:
    port = tor_network.socks_port
    alpha = httpx.Client(proxy=f"socks5h://alpha:x@127.0.0.1:{port}", timeout=60, trust_env=False)
    beta = httpx.Client(proxy=f"socks5h://beta:x@127.0.0.1:{port}", timeout=60, trust_env=False)
    with alpha, beta:  # open connections keep their streams on their circuits
        assert alpha.get(f"http://{onion}/").status_code == 200
        assert beta.get(f"http://{onion}/").status_code == 200
        with Controller.from_port(address="127.0.0.1", port=tor_network.control_port) as tor:
            stem.connection.authenticate_cookie(tor, str(tor_network.cookie_path))
            circuits = tor.get_circuits()
    by_user = {
        user: {c.id for c in circuits if c.socks_username == user} for user in ("alpha", "beta")
    }
    assert by_user["alpha"] and by_user["beta"], circuits
    assert not by_user["alpha"] & by_user["beta"]


def test_an_unpublished_onion_is_reported_unreachable(tor_network: PrivateTorNetwork) -> None:
    _, nowhere = onion_key("never-published")
    with pytest.raises(TorNetworkError, match="not reachable"):
        tor_network.wait_reachable(f"http://{nowhere}/", timeout=3)


def test_a_failed_start_is_retried_then_reported_and_leaves_no_tor(tmp_path: Path) -> None:
    network = PrivateTorNetwork(tmp_path)
    with pytest.raises(TorNetworkError) as failure:
        network.start(timeout=0)
    message = str(failure.value)
    assert "attempt 1" in message and "attempt 2" in message
    assert "client0" in message and "notice.log" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net-1", "net-2"]
    assert len(network.pids) == 8
    assert not [pid for pid in network.pids if pid_alive(pid)]
