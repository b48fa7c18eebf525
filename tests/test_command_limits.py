"""`fixtures save-page` and `session check` keep the crawl's download limits (a gzip bomb, an
endless or trickling stream) and send a session cookie only to hosts the source names."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from crawler.session import may_receive_session
from crawler.settings import DOWNLOAD_MAXSIZE
from crawler.sources.loader import DEFAULT_SOURCES_DIR, load_source
from fixtures.measured import launched, usage

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SESSION = "s3cr3t-session-value"
# Far past DOWNLOAD_MAXSIZE (16 MiB), and past what a command may hold: reading it whole
# would show in the peak memory whatever else the process holds (about 100 MiB).
BIG = 512 * 1024 * 1024
CHUNK = 64 * 1024


class Hostile(BaseHTTPRequestHandler):
    """Serves `server.mode` at every path and notes each request's Cookie header."""

    server: HostileServer

    def do_GET(self) -> None:
        self.server.cookies.append(self.headers.get("Cookie", ""))
        mode = self.server.mode
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Connection", "close")
        if mode == "bomb":  # 512 MiB of zeros, gzipped as it goes
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        with contextlib.suppress(OSError):  # the client went away: what a limit is for
            self._body(mode)

    def _body(self, mode: str) -> None:
        if mode == "bomb":
            packer = zlib.compressobj(9, zlib.DEFLATED, 31)
            zeros = bytes(CHUNK)
            for _ in range(BIG // CHUNK):
                self.wfile.write(packer.compress(zeros))
            self.wfile.write(packer.flush())
        elif mode == "stream":  # no Content-Length, 512 MiB
            chunk = b"<p>" + b"a" * (CHUNK - 3)
            for _ in range(BIG // CHUNK):
                self.wfile.write(chunk)
        elif mode == "drip":  # a byte every 0.1 s for 8 s
            for _ in range(80):
                self.wfile.write(b"a")
                self.wfile.flush()
                time.sleep(0.1)

    def log_message(self, *_: Any) -> None:
        pass


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Hostile)
        self.mode = "bomb"
        self.cookies: list[str] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _cli(home: Path, *args: str, stdin: str = "") -> tuple[int, str, str, float, int]:
    """(exit code, stdout, stderr, seconds, the process's peak RSS in MiB) of a command."""
    env = {**os.environ, "DARKARCHIVE_HOME": str(home)}
    home.mkdir(exist_ok=True)
    out_path, err_path, rss_path = home / "out.txt", home / "err.txt", home / "maxrss.txt"
    started = time.monotonic()
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            launched([sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", *args],
                     rss_path),
            stdin=subprocess.PIPE, stdout=out, stderr=err, text=True, env=env,
        )  # fmt: skip
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
        code = process.wait()
    seconds = time.monotonic() - started
    rss = int(usage(rss_path).maxrss_mib)
    return code, out_path.read_text(), err_path.read_text(), seconds, rss


def _demo_copy(tmp_path: Path, timeout: int = 30, extra: str = "") -> Path:
    """demo.yaml in a folder of its own, with a politeness timeout of `timeout` seconds."""
    folder = tmp_path / "sources"
    folder.mkdir(exist_ok=True)
    text = (DEFAULT_SOURCES_DIR / "demo.yaml").read_text(encoding="utf-8")
    text = text.replace("timeout: 30,", f"timeout: {timeout},") + extra
    path = folder / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("mode", ["bomb", "stream"])
def test_save_page_stops_at_download_maxsize_and_writes_nothing(
    tmp_path: Path, hostile: HostileServer, mode: str
) -> None:
    hostile.mode = mode
    root = tmp_path / "pages"
    url = f"http://127.0.0.1:{hostile.port}/listing/l1"
    code, _, err, seconds, rss = _cli(
        tmp_path, "fixtures", "save-page", "demo", url, "--kind", "listing", "--case", mode,
        "--root", str(root),
    )  # fmt: skip
    assert code == 1, err
    assert f"darkarchive: refused: {url} cut off: the body grew past DOWNLOAD_MAXSIZE" in err
    assert err.strip().endswith("nothing was saved")
    assert not root.exists(), "a fixture was written"
    # Before the limits a 40 MiB body reached 215-296 MiB. A chunk of a bomb inflates
    # before it can be counted, so the peak moves with how much the socket holds: a bound,
    # not a figure (bench/ measures figures).
    assert seconds < 30 and rss < 400, (seconds, rss)


def test_save_page_stops_a_trickle_at_the_sources_timeout(
    tmp_path: Path, hostile: HostileServer
) -> None:
    hostile.mode = "drip"
    source = _demo_copy(tmp_path, timeout=1)
    root = tmp_path / "pages"
    url = f"http://127.0.0.1:{hostile.port}/listing/l1"
    code, _, err, seconds, _ = _cli(
        tmp_path, "fixtures", "save-page", str(source), url, "--kind", "listing",
        "--case", "drip", "--root", str(root),
    )  # fmt: skip
    assert code == 1, err
    assert "still downloading after 1 s (the source's politeness.timeout)" in err
    assert not root.exists()
    assert seconds < 7, "the 8 s trickle was read to its end"


def test_session_check_keeps_the_limits_and_marks_nothing(
    tmp_path: Path, hostile: HostileServer
) -> None:
    _cli(tmp_path, "session", "set", "demo", "--cookie", "session", stdin=SESSION + "\n")
    mirror = f"http://127.0.0.1:{hostile.port}"
    code, out, err, _, rss = _cli(tmp_path, "session", "check", "demo", "--mirror", mirror)
    assert code == 1, out + err
    assert f"could not check the session: {mirror}/ cut off: the body grew past" in err
    assert hostile.cookies == [f"session={SESSION}"], "--mirror was not the host asked"
    stored = json.loads((tmp_path / "sessions" / "demo.json").read_text(encoding="utf-8"))
    assert stored["status"] == "unchecked"
    assert rss < 400  # the 512 MiB bomb was not read whole (see above)


def test_session_check_sends_the_cookie_only_to_hosts_the_source_names(
    tmp_path: Path, hostile: HostileServer
) -> None:
    _cli(tmp_path, "session", "set", "demo", "--cookie", "session", stdin=SESSION + "\n")
    elsewhere = f"http://localhost:{hostile.port}"  # the same server under a name demo lacks
    code, out, err, _, _ = _cli(tmp_path, "session", "check", "demo", "--mirror", elsewhere)
    assert code == 2, out + err
    assert f"darkarchive: refused: {elsewhere} is not a host of demo" in err
    assert "tor.allow_hosts: 127.0.0.1)" in err
    assert hostile.cookies == [], "the session went to a host the source does not name"
    onion = "http://" + "a" * 56 + ".onion"
    code, out, err, _, _ = _cli(tmp_path, "session", "check", "demo-onion", "--mirror", onion)
    assert code == 2 and f"refused: {onion} is not a host of demo-onion" in err, out + err
    assert SESSION not in out + err


def test_allow_hosts_may_receive_the_session() -> None:
    onion = load_source("demo-onion")
    assert may_receive_session(onion, onion.mirrors[0] + "/listing/x")
    assert not may_receive_session(onion, "http://cdn.example/x")
    widened = onion.model_copy(
        update={"tor": onion.tor.model_copy(update={"allow_hosts": ["cdn.example"]})}
    )
    assert may_receive_session(widened, "http://CDN.example:8080/x")
    assert not may_receive_session(widened, "http://cdn.example.evil/x")


def test_session_set_asks_for_the_cookie_the_source_names(tmp_path: Path) -> None:
    nameless = _demo_copy(tmp_path)
    code, _, err, _, _ = _cli(tmp_path, "session", "set", str(nameless), stdin="v\n")
    assert code == 2
    assert "which cookie holds the login for demo? Give its name with --cookie NAME" in err
    assert not (tmp_path / "sessions" / "demo.json").exists()
    named = _demo_copy(tmp_path, extra="session: {cookie: PHPSESSID}\n")
    code, out, err, _, _ = _cli(tmp_path, "session", "set", str(named), stdin="v1\n")
    assert code == 0, err
    assert "cookies PHPSESSID" in out
    # Renewing (what the pause message asks for) keeps the names stored before.
    code, out, err, _, _ = _cli(tmp_path, "session", "set", str(nameless), stdin="v2\n")
    assert code == 0, err
    stored = json.loads((tmp_path / "sessions" / "demo.json").read_text(encoding="utf-8"))
    assert stored["cookies"] == {"PHPSESSID": "v2"}
    assert DOWNLOAD_MAXSIZE < 40 * 1024 * 1024  # the hostile bodies above are past it
