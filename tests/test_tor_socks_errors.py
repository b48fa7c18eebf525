"""Every SOCKS reply Tor gives (from a loopback SOCKS5 server or a real tor) maps to its action."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2 as httpx
import pytest
import socksio.socks5
from httpcore2._async import socks_proxy
from tor_helpers import (
    INVALID_ONION,
    FakeSocks5,
    dead_authority_options,
    lone_tor,
    scrapy_error,
    valid_onion,
)

from crawler.tor.managed import free_port
from crawler.tor.socks_errors import TorFailure, classify, teach_socks_client

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    Fetch = Callable[..., Exception]

# Tor's own replies (socks5.trunnel; socks-extensions.txt for ExtendedErrors 0xF0–0xF7) and
# the crawl's decision, written out rather than read from the code so that a changed
# decision shows up as a failing row: (code, kind, action, circuit-related).
TOR_REPLIES = [
    (0x01, "general SOCKS server failure", "retry", True),
    (0x02, "connection not allowed by ruleset", "give_up", False),
    (0x03, "network unreachable", "retry", True),
    (0x04, "host unreachable", "retry", True),
    (0x05, "connection refused", "retry", False),
    (0x06, "TTL expired", "retry", True),
    (0x07, "command not supported", "give_up", False),
    (0x08, "address type not supported", "give_up", False),
    (0xF0, "onion service descriptor can not be found", "retry", True),
    (0xF1, "onion service descriptor is invalid", "give_up", False),
    (0xF2, "onion service introduction failed", "retry", True),
    (0xF3, "onion service rendezvous failed", "retry", True),
    (0xF4, "onion service missing client authorization", "give_up", False),
    (0xF5, "onion service wrong client authorization", "give_up", False),
    (0xF6, "onion service invalid address", "give_up", False),
    (0xF7, "onion service introduction timed out", "retry", True),
]
ROW_IDS = [f"0x{row[0]:02X}" for row in TOR_REPLIES]


@pytest.fixture(autouse=True)
def _taught() -> None:
    teach_socks_client()


def _httpx_error(proxy: str, timeout: float = 5.0) -> Exception:
    with pytest.raises(httpx.HTTPError) as caught:
        httpx.get(f"http://{valid_onion()}/", proxy=proxy, timeout=timeout)
    return caught.value


@pytest.mark.parametrize(("code", "kind", "action", "circuit"), TOR_REPLIES, ids=ROW_IDS)
def test_reply_through_httpx(code: int, kind: str, action: str, circuit: bool) -> None:
    with FakeSocks5(reply=code) as socks:
        error = _httpx_error(f"socks5h://src:pw@{socks.address}")
    assert isinstance(error, httpx.ProxyError)
    assert classify(error) == TorFailure(kind, action, code, circuit)  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "kind", "action", "circuit"), TOR_REPLIES, ids=ROW_IDS)
def test_reply_through_scrapy_handler(code: int, kind: str, action: str, circuit: bool) -> None:
    with FakeSocks5(reply=code) as socks:
        error = scrapy_error(f"socks5h://src:pw@{socks.address}")
        (request,) = socks.requests
    failure = classify(error)
    assert failure == TorFailure(kind, action, code, circuit)  # type: ignore[arg-type]
    assert failure.reason == f"{kind} (SOCKS 0x{code:02X})"
    assert (request.username, request.password, request.atyp) == ("src", "pw", 0x03)


@pytest.mark.parametrize("fetch", [_httpx_error, scrapy_error], ids=["httpx", "scrapy"])
def test_refused_socks_port_means_tor_is_down(fetch: Fetch) -> None:
    error = fetch(f"socks5h://src:pw@127.0.0.1:{free_port()}")
    failure = classify(error)
    assert failure is not None
    assert failure.action == "tor_down" and failure.code is None and not failure.circuit


@pytest.mark.parametrize("fetch", [_httpx_error, scrapy_error], ids=["httpx", "scrapy"])
def test_a_tor_that_never_answers_times_out_and_is_retried(fetch: Fetch) -> None:
    with FakeSocks5(reply=None) as socks:
        error = fetch(f"socks5h://src:pw@{socks.address}", timeout=0.5)
    assert classify(error) == TorFailure("timed out through Tor", "retry", None, True)


def test_a_code_tor_does_not_define_is_a_malformed_reply_retried() -> None:
    with FakeSocks5(reply=0xF8) as socks:
        error = scrapy_error(f"socks5h://src:pw@{socks.address}")
    assert classify(error) == TorFailure("malformed SOCKS reply", "retry", None, True)


def test_errors_that_are_not_tor_failures_are_left_alone() -> None:
    assert classify(ValueError("no Tor here")) is None
    assert classify(KeyError("proxy")) is None


def test_teach_socks_client_is_idempotent() -> None:
    codes = socksio.socks5.SOCKS5ReplyCode
    member = codes(b"\xf0")
    table = dict(socks_proxy.REPLY_CODES)
    teach_socks_client()
    teach_socks_client()
    assert codes(b"\xf0") is member and member.name == "TOR_F0"
    assert table == socks_proxy.REPLY_CODES
    assert table[b"\xf6"] == "onion service invalid address [0xF6]"
    assert codes(b"\x06") is codes.TTL_EXPIRED, "RFC 1928 codes keep their own members"
    with pytest.raises(ValueError):
        codes(b"\xf8")


def test_a_real_tor_gives_the_codes_of_the_table(tmp_path: Path) -> None:
    """A tor that cannot reach any onion: an invalid address is refused at once (0xF6, give
    up); a valid one times out inside tor after SocksTimeout (0x06, retry)."""
    with lone_tor(tmp_path / "tor", dead_authority_options()) as tor:
        proxy = f"socks5h://src:pw@127.0.0.1:{tor.socks_port}"
        with pytest.raises(httpx.ProxyError) as invalid:
            httpx.get(f"http://{INVALID_ONION}/", proxy=proxy, timeout=10)
        with pytest.raises(httpx.ProxyError) as unreachable:
            httpx.get(f"http://{valid_onion()}/", proxy=proxy, timeout=10)
    assert classify(invalid.value) == TorFailure(
        "onion service invalid address", "give_up", 0xF6, False
    )
    assert classify(unreachable.value) == TorFailure("TTL expired", "retry", 0x06, True)
