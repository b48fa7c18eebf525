"""A crawl opens no listening socket: no telnet console, no remote control, nothing.

Scrapy 2.19 starts a remote control by default (an HTTP endpoint on loopback that runs
Python code, its token in a job file under the user's home). The sockets the project
documents as listening belong to other processes (the embedded database, a managed tor,
the scheduler's metrics port); the crawl process itself listens on none. Checked from
/proc while a slowed-down crawl runs: the crawl's socket inodes against the LISTEN entries
of /proc/net/tcp and tcp6.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pymongo
import pytest

from crawler.runner import crawl_settings
from fixtures.hostile import Hostility
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from pipelines.store.embedded import EmbeddedMongo

LISTEN = "0A"


def listening_inodes() -> dict[str, str]:
    """inode → local address of every TCP socket in LISTEN state (IPv4 and IPv6)."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN:
                found[fields[9]] = fields[1]
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def listening_of(pid: int) -> list[str]:
    try:
        mine = socket_inodes(pid)
    except OSError:  # the process ended
        return []
    listening = listening_inodes()
    return [listening[inode] for inode in mine & listening.keys()]


def test_the_check_sees_a_listening_socket() -> None:
    """The detector itself works: this process's own listener is found (beside any that
    servers of other tests in this pytest process hold)."""
    before = set(listening_of(os.getpid()))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert set(listening_of(os.getpid())) == before
        sock.listen()
        (new,) = set(listening_of(os.getpid())) - before
        assert new.endswith(f":{sock.getsockname()[1]:04X}")


def test_remote_control_and_telnet_are_off_in_the_settings() -> None:
    settings = crawl_settings()
    assert settings.getbool("REMOTE_CONTROL_ENABLED") is False
    assert settings.getbool("TELNETCONSOLE_ENABLED") is False


@pytest.mark.parametrize(
    ("extra", "remote_control"),
    [
        ([], False),
        # The check catches what the setting turns off: Scrapy's default, switched back on.
        (["-s", "REMOTE_CONTROL_ENABLED=True"], True),
    ],
    ids=["as configured", "control: remote control on"],
)
def test_a_crawl_listens_on_nothing_and_leaves_no_job_file(
    mongo_server: EmbeddedMongo, tmp_path: Path, extra: list[str], remote_control: bool
) -> None:
    name = f"listen_{uuid.uuid4().hex[:8]}"
    home = tmp_path / "user"
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,  # the database is another process's socket
        "DARKARCHIVE_DB": name,
        "DARKARCHIVE_HOME": str(tmp_path / "home"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
    }
    slow = Hostility(slow_every=1, slow_seconds=0.3)
    samples, listening = 0, []
    with FixtureServer(market="demo", day=1, hostility=slow) as server:
        crawl = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
             "--mirror", server.url, "-s", "CLOSESPIDER_PAGECOUNT=40", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            while crawl.poll() is None:
                if server.requests_served:  # the engine runs: Scrapy's extensions are up
                    listening += listening_of(crawl.pid)
                    samples += 1
                time.sleep(0.05)
            out, err = crawl.communicate()
        finally:
            if crawl.poll() is None:
                crawl.kill()
                crawl.communicate()
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri)
    client.drop_database(name)
    client.close()
    assert crawl.returncode in (0, 4), out + err[-3000:]
    assert samples >= 10, "the crawl ended before it could be watched"
    if remote_control:
        assert listening and all(a.startswith("0100007F:") for a in listening), listening
        assert list(home.rglob("job_files"))
        return
    assert listening == []
    assert not list(home.rglob("job_files")), list(home.rglob("*"))
