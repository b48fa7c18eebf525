"""Shared by the Tor tests: onion addresses, a loopback SOCKS5 server, lone tor processes."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymongo
from scrapy import Request
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from crawler.sources.loader import DEFAULT_SOURCES_DIR
from crawler.tor.handler import TorDownloadHandler
from crawler.tor.managed import ManagedTorProcess, free_port
from crawler.tor.socks_errors import teach_socks_client
from fixtures.tornet import onion_key

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from pymongo.database import Database
    from scrapy.http import Response


PROJECT_ROOT = DEFAULT_SOURCES_DIR.parents[1]  # where scrapy.cfg is
ZEROS = "0" * 40


def valid_onion() -> str:
    """A well-formed v3 onion hostname (checksum and version right) that nobody serves."""
    return onion_key(uuid.uuid4().hex)[1]


INVALID_ONION = "a" * 56 + ".onion"  # right length, wrong checksum: tor says 0xF6 at once


def isolated(options: Mapping[str, str | list[str]]) -> bool:
    """Network off, or a private test network whose only authorities are on loopback."""
    if options.get("DisableNetwork") == "1":
        return True
    authorities = options.get("DirAuthority", [])
    authorities = [authorities] if isinstance(authorities, str) else authorities
    return (
        options.get("TestingTorNetwork") == "1"
        and options.get("UseDefaultFallbackDirs") == "0"
        and bool(authorities)
        and all(" 127.0.0.1:" in line for line in authorities)
    )


def dead_authority_options() -> dict[str, str | list[str]]:
    """torrc options of a tor whose only directory authority is a dead loopback port.

    Its SOCKS port accepts requests and answers each one with TTL expired (0x06) after
    `SocksTimeout` seconds: Tor up, but unusable. It never reaches the public network.
    """
    port = free_port()
    return {
        "TestingTorNetwork": "1",
        "DirAuthority": f"dead orport={port} no-v2 v3ident={ZEROS} 127.0.0.1:{port} {ZEROS}",
        "SocksTimeout": "2",
        "UseDefaultFallbackDirs": "0",
        "ClientUseIPv6": "0",
        "AddressDisableIPv6": "1",
        "GeoIPFile": '""',
        "GeoIPv6File": '""',
    }


@contextmanager
def lone_tor(
    data_dir: Path,
    options: Mapping[str, str | list[str]],
    kind: type[ManagedTorProcess] = ManagedTorProcess,
) -> Iterator[ManagedTorProcess]:
    """A started tor that cannot reach the public network; always stopped afterwards."""
    assert isolated(options), "a test tor must never reach the public Tor network"
    tor = kind(data_dir, options=options)
    try:
        tor.start()
        yield tor
    finally:
        tor.stop()


class TeamTor(ManagedTorProcess):
    """A tor as a team runs it for `mode: external`: nobody owns it, password auth only.

    (A tor owned by this process would be taken over by stem on password authentication
    and would exit when that connection closes.)
    """

    def torrc(self) -> str:
        skip = ("__OwningControllerProcess", "CookieAuthentication")
        lines = [line for line in super().torrc().splitlines() if not line.startswith(skip)]
        return "\n".join(lines) + "\n"


def hashed_password(password: str) -> str:
    """What `tor --hash-password` prints, for HashedControlPassword."""
    result = subprocess.run(
        ["tor", "--hash-password", password], capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


def control_address(tor: ManagedTorProcess) -> str:
    return (tor.data_dir / "control-port").read_text().strip().removeprefix("PORT=")


@dataclass
class SocksRequest:
    """What one client told the SOCKS server: auth methods, credentials, destination."""

    methods: bytes
    username: str | None = None
    password: str | None = None
    atyp: int | None = None
    host: str | None = None
    port: int | None = None


class FakeSocks5:
    """A SOCKS5 server on loopback that records every request and answers `reply` to each.

    Reply 0x00 relays the connection to `upstream` (a loopback HTTP server); `reply=None`
    accepts the request and never answers (a stalled Tor).
    """

    def __init__(self, reply: int | None = 0x00, upstream: tuple[str, int] | None = None):
        self.reply = reply
        self.upstream = upstream
        self.requests: list[SocksRequest] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> FakeSocks5:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        with suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        with self._lock:
            for sock in self._open:
                with suppress(OSError):
                    sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._open.append(client)
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with suppress(OSError, ConnectionError), client:
            self._negotiate(client)

    def _negotiate(self, client: socket.socket) -> None:
        version, count = _read(client, 2)
        assert version == 5
        record = SocksRequest(methods=_read(client, count))
        with self._lock:
            self.requests.append(record)
        if 0x02 in record.methods:
            client.sendall(b"\x05\x02")
            _, length = _read(client, 2)
            record.username = _read(client, length).decode()
            (length,) = _read(client, 1)
            record.password = _read(client, length).decode()
            client.sendall(b"\x01\x00")
        else:
            client.sendall(b"\x05\x00")
        _, _, _, record.atyp = _read(client, 4)
        if record.atyp == 0x01:
            record.host = socket.inet_ntop(socket.AF_INET, _read(client, 4))
        elif record.atyp == 0x04:
            record.host = socket.inet_ntop(socket.AF_INET6, _read(client, 16))
        else:
            (length,) = _read(client, 1)
            record.host = _read(client, length).decode()
        record.port = int.from_bytes(_read(client, 2), "big")
        if self.reply is None:
            self._stopped.wait()
            return
        client.sendall(bytes([5, self.reply, 0, 1, 0, 0, 0, 0, 0, 0]))
        if self.reply == 0x00 and self.upstream is not None:
            with socket.create_connection(self.upstream) as upstream:
                _relay(client, upstream)

    def usernames(self) -> set[str | None]:
        with self._lock:
            return {r.username for r in self.requests if r.host is not None}


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _relay(a: socket.socket, b: socket.socket) -> None:
    selector = selectors.DefaultSelector()
    selector.register(a, selectors.EVENT_READ, b)
    selector.register(b, selectors.EVENT_READ, a)
    while True:
        for key, _ in selector.select(timeout=30):
            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            if not data:
                return
            key.data.sendall(data)


def scrapy_error(proxy: str, *, url: str | None = None, timeout: float = 5.0) -> Exception:
    """The exception a request through TorDownloadHandler (built from a crawler as Scrapy
    builds it) raises when Tor behind `proxy` refuses it; a success is an AssertionError."""
    teach_socks_client()
    crawler = get_crawler(settings_dict={"DOWNLOAD_TIMEOUT": timeout})

    async def fetch() -> Response:
        handler = build_from_crawler(TorDownloadHandler, crawler)
        request = Request(url or f"http://{valid_onion()}/", meta={"proxy": proxy})
        request.meta["download_timeout"] = timeout
        try:
            return await handler.download_request(request)
        finally:
            await handler.close()

    try:
        asyncio.run(fetch())
    except Exception as exc:  # which exception Scrapy raises is what is tested
        return exc
    raise AssertionError(f"the request through {proxy} succeeded")


def tor_source_yaml(
    sources: Path,
    mirror: str,
    *,
    tor: Mapping[str, Any] | None = None,
    start_pages: list[str] | None = None,
    politeness: Mapping[str, Any] | None = None,
) -> Path:
    """config/sources/demo.yaml turned into a Tor source with an onion mirror, in `sources`.

    JSON is YAML's flow style, so the replaced keys are written as JSON.
    """
    text = (DEFAULT_SOURCES_DIR / "demo.yaml").read_text(encoding="utf-8")
    text = text.replace("network: clearnet", "network: tor")
    text = text.replace("  - http://127.0.0.1:8800", f"  - {mirror}")
    replace = {"start_pages": start_pages, "politeness": politeness}
    lines = [
        f"{key}: {json.dumps(replace[key])}"
        if (key := line.partition(":")[0]) in replace and replace[key] is not None
        else line
        for line in text.splitlines()
    ]
    if tor is not None:
        lines.append(f"tor: {json.dumps(dict(tor))}")
    sources.mkdir(parents=True, exist_ok=True)
    path = sources / "demo.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def scrapy_crawl_command(mirror: str, *settings: str) -> list[str]:
    """`scrapy crawl market -a source=demo -a mirror=… -s …`, as the team runs it."""
    args = [sys.executable, "-m", "scrapy", "crawl", "market", "-a", "source=demo"]
    args += ["-a", f"mirror={mirror}", "-s", "LOG_LEVEL=INFO"]
    for setting in settings:
        args += ["-s", setting]
    return args


def scrapy_crawl(
    env: Mapping[str, str], mirror: str, *settings: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        scrapy_crawl_command(mirror, *settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env),
        cwd=PROJECT_ROOT,
    )


@contextmanager
def crawl_env(mongo_uri: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], Database[Any]]]:
    """An environment for a crawl subprocess: its own database and its own sources folder."""
    name = f"tor_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_uri,
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
        "DARKARCHIVE_SOURCES_DIR": str(tmp_path / "sources"),
    }
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_uri, tz_aware=True)
    try:
        yield env, client[name]
    finally:
        client.drop_database(name)
        client.close()
