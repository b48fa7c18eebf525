"""A run's local append-only spool: what a crawl fetched while the database was unreachable.

Losing the database must not lose fetched pages, so each page (raw body, records, feedback,
rates, events) goes to `$DARKARCHIVE_HOME/spool/<run id>/records.spool` instead, fsync'd
record by record, until it can be written through the archive's idempotent path. A record
is framed as

    b"DAS1" | payload length (4 bytes, big-endian) | sha256 of the payload | payload

with the payload a zstandard-compressed BSON document, so a torn or corrupt tail is found
by its length or checksum and reported (`SpoolDamage`), never taken for the end. The crawl
that writes a spool holds an exclusive `flock` on its `lock` file: a flush waits its turn.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import shutil
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bson
import zstandard
from bson.codec_options import CodecOptions

from pipelines.store.codec import from_bson, to_bson

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

logger = logging.getLogger(__name__)

MAGIC = b"DAS1"
HEADER = struct.Struct(">4sI32s")  # magic, payload length, sha256 of the payload
RECORDS = "records.spool"
LOCK = "lock"
MAX_PAYLOAD = 64 * 1024 * 1024
_DECODE: CodecOptions[Any] = CodecOptions(tz_aware=True)


def spool_root(home: Path) -> Path:
    """Where every run's spool lives: `$DARKARCHIVE_HOME/spool`."""
    return home / "spool"


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One framed record: header with length and sha256, then compressed BSON."""
    payload = zstandard.ZstdCompressor(level=3).compress(bson.encode(to_bson(dict(record))))
    return HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest()) + payload


def decode_payload(payload: bytes) -> dict[str, Any]:
    raw = zstandard.ZstdDecompressor().decompress(payload, max_output_size=MAX_PAYLOAD * 4)
    decoded: dict[str, Any] = from_bson(bson.decode(raw, codec_options=_DECODE))
    return decoded


class SpoolError(RuntimeError):
    """The spool cannot be used; the message says which and why."""


class SpoolFullError(SpoolError):
    """The spool's disk is full (ENOSPC): nothing more can be kept; what is kept stays."""


class SpoolBusyError(SpoolError):
    """Another live process (the crawl that writes it, or a flush) holds the spool."""


@dataclass(frozen=True)
class SpoolDamage:
    """A record that cannot be read back: where, how many bytes are unreadable, and why."""

    path: Path
    offset: int
    unreadable: int
    why: str

    def describe(self) -> str:
        return (
            f"{self.path}: {self.why} at byte {self.offset}; {self.unreadable} byte(s) from "
            "there on are unreadable and were not written"
        )


@dataclass
class SpoolSummary:
    """What a spool holds, counted from its records (what the CLI reports)."""

    run: str = ""
    source: str = ""
    since: datetime | None = None
    pages: int = 0
    listings: int = 0
    vendors: int = 0
    feedback: int = 0
    events: int = 0
    verdict: dict[str, Any] | None = None
    damage: SpoolDamage | None = None
    size: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """`12 page(s) (8 listing(s), 1 vendor(s), 40 feedback entries)`."""
        return (
            f"{self.pages} page(s) ({self.listings} listing(s), {self.vendors} vendor(s), "
            f"{self.feedback} feedback entries)"
        )


class Spool:
    """One run's spool folder: append records, read them back in order, remove it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / RECORDS
        self._file: Any = None
        self._lock_fd: int | None = None

    @property
    def run_id(self) -> str:
        return self.folder.name

    def exists(self) -> bool:
        return self.path.exists()

    # -- locking ------------------------------------------------------------------------
    def lock(self) -> Spool:
        """Take the spool for this process, or SpoolBusyError naming who holds it."""
        if self._lock_fd is not None:
            return self
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # raw pages: owner only
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SpoolBusyError(
                f"the spool of run {self.run_id} is held by pid {holder}, which is still "
                "running (a crawl flushes its own spool when the database is back)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        return self

    def unlock(self) -> None:
        self.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    # -- writing ------------------------------------------------------------------------
    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record and fsync it; on ENOSPC, cut back to the last whole record."""
        data = encode_record(record)
        if self._file is None:
            self.lock()
            new = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._file = os.fdopen(fd, "ab", buffering=0)
            if new:
                _fsync_dir(self.folder)
        start = self._file.seek(0, os.SEEK_END)  # where a failed write is cut back to
        try:
            view = memoryview(data)
            while view:  # a write to a filling disk may be short before it fails
                view = view[os.write(self._file.fileno(), view) :]
            os.fsync(self._file.fileno())
        except OSError as exc:
            self._cut_back(start)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise SpoolFullError(
                    f"the disk of the spool {self.path} is full: {exc.strerror}"
                ) from exc
            raise SpoolError(f"cannot write the spool {self.path}: {exc}") from exc

    def _cut_back(self, size: int) -> None:
        """Leave only whole records behind after a failed write."""
        try:
            self._file.truncate(size)
            os.fsync(self._file.fileno())
        except OSError:
            logger.exception("could not cut the spool %s back to %d bytes", self.path, size)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- reading ------------------------------------------------------------------------
    def read(self, offset: int = 0) -> Iterator[tuple[int, dict[str, Any] | SpoolDamage]]:
        """(offset after the record, record) in order from `offset`; a damaged record ends
        the iteration as a `SpoolDamage` instead of a record."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            file.seek(offset)
            while offset < size:
                header = file.read(HEADER.size)
                damage = self._check(header, offset, size)
                if damage is None:
                    _, length, digest = HEADER.unpack(header)
                    payload = file.read(length)
                    if len(payload) < length:
                        damage = self._damage(offset, size, "a record cut short (truncated)")
                    elif hashlib.sha256(payload).digest() != digest:
                        damage = self._damage(offset, size, "a record whose checksum differs")
                if damage is not None:
                    yield offset, damage
                    return
                offset += HEADER.size + length
                try:
                    record = decode_payload(payload)
                except Exception as exc:  # checksummed but unreadable: written by a bug
                    yield offset, self._damage(offset, size, f"an undecodable record ({exc})")
                    return
                yield offset, record

    def _check(self, header: bytes, offset: int, size: int) -> SpoolDamage | None:
        if len(header) < HEADER.size:
            return self._damage(offset, size, "a record header cut short (truncated)")
        magic, length, _ = HEADER.unpack(header)
        if magic != MAGIC or length > MAX_PAYLOAD:
            return self._damage(offset, size, "a record that does not start with a valid header")
        return None

    def _damage(self, offset: int, size: int, why: str) -> SpoolDamage:
        return SpoolDamage(self.path, offset, size - offset, why)

    def summary(self) -> SpoolSummary:
        """Count what the spool holds (pages, entities, feedback, verdict, damage)."""
        summary = SpoolSummary(run=self.run_id, size=_size(self.path))
        for _, record in self.read():
            if isinstance(record, SpoolDamage):
                summary.damage = record
                break
            kind = record.get("type", "?")
            summary.by_type[kind] = summary.by_type.get(kind, 0) + 1
            if kind == "run":
                summary.source = record.get("source", "")
                summary.since = record.get("since")
            elif kind == "page":
                summary.pages += 1
                for entity_kind, _, _ in record.get("records") or []:
                    if entity_kind == "listing":
                        summary.listings += 1
                    elif entity_kind == "vendor":
                        summary.vendors += 1
                summary.feedback += len(record.get("feedback") or [])
            elif kind == "event":
                summary.events += 1
            elif kind == "verdict":
                summary.verdict = record
        return summary

    def keep_damaged(self) -> Path:
        """Set a damaged spool aside (never deleted): it is evidence of what was lost."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = self.folder.parent / f"{self.folder.name}.damaged-{stamp}"
        self.close()
        self.path.rename(self.folder / f"{RECORDS}.damaged")
        shutil.move(str(self.folder), kept)
        return kept

    def remove(self) -> None:
        """Everything in it is written: delete the records, then the folder."""
        self.close()
        self.path.unlink(missing_ok=True)
        _fsync_dir(self.folder)
        self.unlock()
        shutil.rmtree(self.folder, ignore_errors=True)


def pending_spools(root: Path, source: str | None = None) -> list[Spool]:
    """Spools with records not yet written, oldest run first (of `source` if given)."""
    if not root.is_dir():
        return []
    found = [
        Spool(folder)
        for folder in sorted(root.iterdir())
        if folder.is_dir() and (folder / RECORDS).exists() and ".damaged-" not in folder.name
    ]
    if source is not None:
        found = [s for s in found if s.run_id.rpartition(":")[0] == source]
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolPendingError(SpoolError):
    """A source's earlier run still has pages in a spool: they go first, or nothing does."""
