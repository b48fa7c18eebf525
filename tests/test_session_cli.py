"""`darkarchive session set|show|check`: a person's login, stored safely and checked for real."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

from fixtures.hostile import Hostility
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from pathlib import Path

SESSION = "s3cr3t-session-value"


def _cli(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DARKARCHIVE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", *args],
        input=stdin, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_set_stores_owner_only_and_never_shows_the_value(tmp_path: Path) -> None:
    result = _cli(
        tmp_path, "session", "set", "demo", "--cookie", "session", "--user-agent", "UA/1.0",
        stdin=SESSION + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    path = tmp_path / "sessions" / "demo.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["cookies"] == {"session": SESSION} and stored["user_agent"] == "UA/1.0"
    shown = _cli(tmp_path, "session", "show", "demo")
    assert shown.returncode == 0
    assert "cookies session with its user agent" in shown.stdout
    assert SESSION not in result.stdout + result.stderr + shown.stdout + shown.stderr


def test_an_empty_value_is_refused(tmp_path: Path) -> None:
    result = _cli(tmp_path, "session", "set", "demo", "--cookie", "session", stdin="\n")
    assert result.returncode == 2
    assert "no value given for cookie 'session'" in result.stderr
    assert not (tmp_path / "sessions" / "demo.json").exists()


def test_check_tells_a_working_session_from_an_expired_one(tmp_path: Path) -> None:
    _cli(tmp_path, "session", "set", "demo", "--cookie", "session", stdin=SESSION + "\n")
    walled = Hostility(session_cookie=SESSION)
    with FixtureServer(market="demo", day=1, hostility=walled) as server:
        works = _cli(tmp_path, "session", "check", "demo", "--mirror", server.url)
        assert works.returncode == 0, works.stdout + works.stderr
        assert f"session for demo works: {server.url}/ gave a page in state index" in works.stdout
        server.set_hostility(Hostility(session_cookie="another-one"))
        expired = _cli(tmp_path, "session", "check", "demo", "--mirror", server.url)
        url = server.url
    assert expired.returncode == 1
    assert f"session for demo is not valid: {url}/ gave a login page" in expired.stdout
    shown = _cli(tmp_path, "session", "show", "demo")
    assert shown.returncode == 1 and "expired" in shown.stdout


def test_a_crawl_uses_the_stored_session(tmp_path: Path, mongo_server: object) -> None:
    _cli(tmp_path, "session", "set", "demo", "--cookie", "session", stdin=SESSION + "\n")
    database = f"stored_session_{uuid.uuid4().hex[:8]}"
    env_uri = {"MONGODB_URI": mongo_server.uri, "DARKARCHIVE_DB": database}  # type: ignore[attr-defined]
    walled = Hostility(session_cookie=SESSION)
    with FixtureServer(market="demo", day=1, hostility=walled) as server:
        env = {**os.environ, "DARKARCHIVE_HOME": str(tmp_path), **env_uri}
        result = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
             "--mirror", server.url],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        assert server.stats.get("login", 0) == 0
    assert "run demo:000001: complete" in result.stdout, result.stdout + result.stderr


def test_a_source_whose_stored_session_expired_stays_paused(
    tmp_path: Path, mongo_server: object
) -> None:
    """After a crawl met a login wall, the next crawl fetches nothing until a person acts."""
    _cli(tmp_path, "session", "set", "demo", "--cookie", "session", stdin=SESSION + "\n")
    database = f"paused_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DARKARCHIVE_HOME": str(tmp_path),
        "MONGODB_URI": mongo_server.uri,  # type: ignore[attr-defined]
        "DARKARCHIVE_DB": database,
    }
    crawl = [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo"]
    with FixtureServer(market="demo", day=1, hostility=Hostility(session_cookie="new")) as srv:
        first = subprocess.run([*crawl, "--mirror", srv.url], capture_output=True, text=True,
                               timeout=300, env=env)  # fmt: skip
        assert "run demo:000001: failed" in first.stdout, first.stdout + first.stderr
        served = srv.requests_served
        second = subprocess.run([*crawl, "--mirror", srv.url], capture_output=True, text=True,
                                timeout=300, env=env)  # fmt: skip
        assert srv.requests_served == served, "a paused source fetched pages"
    assert "run demo:000002: failed" in second.stdout
    assert (first.returncode, second.returncode) == (1, 5)  # failed, then refused: paused
    assert "darkarchive: refused: source demo is paused" in second.stderr
    assert "why: source demo is paused: its stored session expired" in second.stdout
    assert "expired" in _cli(tmp_path, "session", "show", "demo").stdout
