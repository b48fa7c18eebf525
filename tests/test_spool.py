"""The spool: pages fetched while the database is away are kept on disk, then written.

The format tests write and read real files (a corrupt or torn tail is reported, never
dropped; a full disk is the kernel's own ENOSPC from /dev/full). The crawl tests kill the
real database server mid-crawl and restart it on the same folder and port, and compare the
archive with an undisturbed crawl's export.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
from exports import comparable_export
from subprocesses import run_cli, start_crawl, wait_for

from fixtures.server import FixtureServer
from pipelines.store.embedded import EmbeddedMongo
from pipelines.store.spool import (
    HEADER,
    RECORDS,
    Spool,
    SpoolBusyError,
    SpoolDamage,
    SpoolFullError,
)

if TYPE_CHECKING:
    from pathlib import Path

PAGES = 401  # the demo market on day 1


def _page(n: int) -> dict[str, Any]:
    return {
        "type": "page",
        "url": f"http://m/listing/{n}",
        "fetched_at": datetime(2026, 11, 30, 12, 0, n % 60, 123456, tzinfo=UTC),
        "body": os.urandom(64) + b"<html>" * n,
        "records": [["listing", f"l{n}", {"price": {"amount": Decimal("0.0012")}}]],
        "feedback": [{"buyer": "b", "text": "ok"}] * (n % 3),
    }


def _records(spool: Spool) -> list[Any]:
    return [record for _, record in spool.read()]


def test_records_come_back_in_order_with_their_values(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "demo:000001")
    pages = [_page(n) for n in range(30)]
    for page in pages:
        spool.append(page)
    spool.close()
    back = _records(spool)
    assert [r["url"] for r in back] == [p["url"] for p in pages]
    assert back[7]["body"] == pages[7]["body"]
    assert back[7]["records"][0][2]["price"]["amount"] == Decimal("0.0012")
    # BSON keeps milliseconds, as the archive does; the time zone stays UTC.
    assert back[7]["fetched_at"] == pages[7]["fetched_at"].replace(microsecond=123000)
    summary = spool.summary()
    assert (summary.pages, summary.listings, summary.feedback) == (30, 30, 30)
    assert summary.damage is None


@pytest.mark.parametrize("damage", ["truncated", "flipped", "torn_header", "garbage"])
def test_a_damaged_tail_is_reported_with_its_offset_and_never_dropped(
    tmp_path: Path, damage: str
) -> None:
    spool = Spool(tmp_path / "demo:000001")
    for n in range(5):
        spool.append(_page(n))
    spool.close()
    path = tmp_path / "demo:000001" / RECORDS
    whole = path.read_bytes()
    ends = [offset for offset, _ in spool.read()]
    last_start = ends[3]
    if damage == "truncated":  # a crash in the middle of the last append
        path.write_bytes(whole[:-10])
    elif damage == "flipped":  # a bit flipped on disk in the last record
        data = bytearray(whole)
        data[last_start + HEADER.size + 5] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "torn_header":
        path.write_bytes(whole + b"DAS1\x00")
    else:
        path.write_bytes(whole + b"not a record at all" * 3)
    records = _records(spool)
    *good, last = records
    assert isinstance(last, SpoolDamage), last
    expected_good = 5 if damage in ("torn_header", "garbage") else 4
    assert len(good) == expected_good
    assert last.offset == (ends[4] if expected_good == 5 else last_start)
    assert last.unreadable == path.stat().st_size - last.offset > 0
    summary = spool.summary()
    assert summary.pages == expected_good and summary.damage == last
    assert f"at byte {last.offset}" in last.describe()


def test_a_full_disk_keeps_what_was_spooled(tmp_path: Path) -> None:
    """The kernel's own ENOSPC (/dev/full); the records kept before stay readable."""
    spool = Spool(tmp_path / "demo:000001")
    spool.append(_page(1))
    spool.close()
    kept = (tmp_path / "demo:000001" / RECORDS).read_bytes()
    full = Spool(tmp_path / "demo:000002")
    full.folder.mkdir()
    (full.folder / RECORDS).symlink_to("/dev/full")
    with pytest.raises(SpoolFullError, match="is full"):
        full.append(_page(2))
    full.unlock()
    assert (tmp_path / "demo:000001" / RECORDS).read_bytes() == kept
    assert [r["url"] for r in _records(spool)] == ["http://m/listing/1"]


def test_a_spool_has_one_writer(tmp_path: Path) -> None:
    first = Spool(tmp_path / "demo:000001").lock()
    with pytest.raises(SpoolBusyError, match=f"held by pid {os.getpid()}"):
        subprocess_lock(tmp_path / "demo:000001")
    first.unlock()
    subprocess_lock(tmp_path / "demo:000001")


def subprocess_lock(folder: Path) -> None:
    """flock is per open file: a second process is who must be refused."""
    code = (
        "import sys; from pathlib import Path; from pipelines.store.spool import Spool, "
        "SpoolBusyError\ntry:\n Spool(Path(sys.argv[1])).lock()\nexcept SpoolBusyError as e:"
        "\n print(e); sys.exit(3)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True
    )
    if result.returncode == 3:
        raise SpoolBusyError(result.stdout.strip())
    assert result.returncode == 0, result.stderr


# -- crawls with the database killed ----------------------------------------------------


def _start_crawl(env: dict[str, str], url: str, *args: str) -> subprocess.Popen[str]:
    """A crawl that writes in small batches and slowly enough to kill the server mid-way."""
    return start_crawl(env, url, "-s", "ARCHIVE_BATCH_SIZE=50", "-s", "DOWNLOAD_DELAY=0.02", *args)


def _without_events(export: list[Any]) -> list[Any]:
    """The run header counts its events; the outage adds one `archive` event."""
    *records, header = export
    return [*records, {k: v for k, v in header.items() if k != "events"}]


def _crash(database: EmbeddedMongo) -> int:
    assert database.pid is not None
    port = int(database.uri.rsplit(":", 1)[1].strip("/"))
    os.kill(database.pid, signal.SIGKILL)  # a crash, not a shutdown
    database.stop()
    return port


def test_a_database_outage_mid_crawl_loses_nothing(
    reference: tuple[FixtureServer, list[Any]], tmp_path: Path
) -> None:
    market, expected = reference
    data = tmp_path / "db"
    home = tmp_path / "home"
    database = EmbeddedMongo(data).start()
    env = {
        **os.environ,
        "MONGODB_URI": database.uri + "?serverSelectionTimeoutMS=2000",
        "DARKARCHIVE_DB": "darkarchive",
        "DARKARCHIVE_HOME": str(home),
    }
    served = market.requests_served
    crawl = _start_crawl(env, market.url)
    wait_for(lambda: market.requests_served - served >= 120)
    port = _crash(database)
    spool = home / "spool" / "demo:000001" / RECORDS
    wait_for(lambda: spool.exists(), timeout=60)
    # The crawl goes on while the database is away: pages keep arriving in the spool.
    wait_for(lambda: market.requests_served - served >= 200, timeout=60)
    assert crawl.poll() is None
    spooled_while_down = Spool(spool.parent).summary().pages
    restarted = EmbeddedMongo(data, port=port).start()
    back_at = time.monotonic()
    try:
        out, err = crawl.communicate(timeout=300)
        assert crawl.returncode == 0, out + err[-3000:]
        assert "run demo:000001: complete" in out
        line = re.search(r"unreachable for ([\d.]+) s: (\d+) page\(s\) were spooled", out)
        assert line is not None, out
        assert int(line.group(2)) >= spooled_while_down > 0
        assert not spool.parent.exists(), "a written spool is removed"
        assert market.requests_served - served == PAGES, "every page fetched once"
        env["MONGODB_URI"] = restarted.uri
        assert _without_events(comparable_export("demo", market.url, env)) == _without_events(
            expected
        )
        with pymongo.MongoClient(restarted.uri, tz_aware=True) as client:
            db = client.darkarchive
            (event,) = db.run_events.find({"run": "demo:000001", "kind": "archive"})
            assert event["detail"]["pages_spooled"] == int(line.group(2))
            assert event["detail"]["outage_start"] < event["detail"]["outage_end"]
            assert "the archive database was unreachable from" in event["reason"]
            assert db.pages.count_documents({"run": "demo:000001"}) == PAGES
        print(
            f"outage: {line.group(2)} page(s) spooled over {line.group(1)} s, crawl done "
            f"{time.monotonic() - back_at:.1f} s after the database was back"
        )
    finally:
        restarted.stop()


def test_a_crawl_that_ends_while_the_database_is_down_is_closed_by_spool_flush(
    reference: tuple[FixtureServer, list[Any]], tmp_path: Path
) -> None:
    market, expected = reference
    data = tmp_path / "db"
    home = tmp_path / "home"
    database = EmbeddedMongo(data).start()
    env = {
        **os.environ,
        "MONGODB_URI": database.uri + "?serverSelectionTimeoutMS=2000",
        "DARKARCHIVE_DB": "darkarchive",
        "DARKARCHIVE_HOME": str(home),
    }
    served = market.requests_served
    crawl = _start_crawl(env, market.url)
    wait_for(lambda: market.requests_served - served >= 120)
    port = _crash(database)
    out, err = crawl.communicate(timeout=300)
    assert crawl.returncode == 3, out + err[-3000:]  # the run could not be closed
    assert market.requests_served - served == PAGES, "the crawl went on to the end"
    folder = home / "spool" / "demo:000001"
    summary = Spool(folder).summary()
    assert summary.verdict is not None and summary.verdict["status"] == "complete"
    assert summary.pages > 0 and summary.damage is None
    said = (
        f"run demo:000001: the archive database was unreachable when the crawl ended; "
        f"{summary.pages} page(s) ({summary.listings} listing(s), {summary.vendors} vendor(s), "
        f"{summary.feedback} feedback entries) are kept in the spool {folder}"
    )
    assert said in err, err[-3000:]
    assert "darkarchive spool flush --run demo:000001" in err

    status = subprocess.run(
        [sys.executable, "-m", "crawler.cli", "spool", "status"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert f"run demo:000001: {summary.pages} page(s)" in status.stdout
    assert "verdict kept: complete" in status.stdout

    with EmbeddedMongo(data, port=port) as restarted:
        env["MONGODB_URI"] = restarted.uri
        started = time.monotonic()
        flushed = run_cli("spool", "flush", env=env)
        seconds = time.monotonic() - started
        assert f"spool of run demo:000001: {summary.pages} page(s)" in flushed.stdout
        assert "run complete" in flushed.stdout
        assert not folder.exists()
        assert _without_events(comparable_export("demo", market.url, env)) == _without_events(
            expected
        )
        print(f"spool flush: {summary.pages} page(s) written in {seconds:.1f} s")
        # The next crawl finds nothing left to flush and starts its own run.
        assert "no spool" in run_cli("spool", "status", env=env).stdout


def _file_size_limit(limit: int) -> Any:
    """In the crawl's process: files may not grow past `limit` bytes (EFBIG, as a full disk
    gives ENOSPC), and the signal that would kill it for trying is ignored."""
    import resource

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_spool_stops_the_crawl_keeps_what_was_spooled_and_resume_completes_it(
    reference: tuple[FixtureServer, list[Any]], tmp_path: Path
) -> None:
    market, expected = reference
    data = tmp_path / "db"
    home = tmp_path / "home"
    database = EmbeddedMongo(data).start()
    env = {
        **os.environ,
        "MONGODB_URI": database.uri + "?serverSelectionTimeoutMS=2000",
        "DARKARCHIVE_DB": "darkarchive",
        "DARKARCHIVE_HOME": str(home),
    }
    served = market.requests_served
    crawl = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
         "--mirror", market.url, "-s", "ARCHIVE_BATCH_SIZE=50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=_file_size_limit(300_000),
    )  # fmt: skip
    wait_for(lambda: market.requests_served - served >= 120)
    port = _crash(database)
    out, err = crawl.communicate(timeout=300)
    assert crawl.returncode == 3, out + err[-3000:]
    folder = home / "spool" / "demo:000001"
    summary = Spool(folder).summary()
    assert summary.damage is None, "a failed append leaves only whole records"
    assert summary.verdict is None and summary.pages > 0
    assert "the crawl stopped: the disk of the spool" in err, err[-3000:]
    lost = int(re.search(r"(\d+) fetched page\(s\) were not kept", err).group(1))  # type: ignore[union-attr]
    assert f"{summary.pages} page(s) (" in err
    fetched = market.requests_served - served
    assert fetched < PAGES, "the crawl stopped"

    with EmbeddedMongo(data, port=port) as restarted:
        env["MONGODB_URI"] = restarted.uri
        flushed = run_cli("spool", "flush", "--run", "demo:000001", env=env)
        assert "run interrupted" in flushed.stdout, flushed.stdout
        with pymongo.MongoClient(restarted.uri, tz_aware=True) as client:
            stored = client.darkarchive.pages.count_documents({"run": "demo:000001"})
        resumed = run_cli(
            "crawl", "demo", "--mirror", market.url, "--resume", "demo:000001", env=env
        )
        assert "run demo:000001: complete" in resumed.stdout
        assert f"resumed: {stored} page(s) read back from the archive" in resumed.stdout
        export = comparable_export("demo", market.url, env)
        *records, header = export
        header.pop("resumed", None)
        assert _without_events([*records, header]) == _without_events(expected)
        print(f"spool full: {summary.pages} page(s) kept, {lost} not kept, {stored} stored")
