"""Records ordered by key in bounded memory: sorted chunks spilled to files, then merged.

A run export lists every entity of a run in key order, joined with what the run's pages
displayed beside it. The server cannot hand versions back in key order cheaply
(SecantusDB scans for a sort without an equality prefix; see
/work/shared/notes/mongodb-store.md), and a dict of a whole run held about 7 KB per
entity in the client. So the records are sorted here the classic way: pickled as they
come, kept up to `chunk_bytes`, and past that sorted and written to a file in a private
temporary folder (`tempfile`, so TMPDIR decides where); reading merges the files and
what is still in memory with `heapq.merge`. Equal keys come back in the order they were
added, which is what lets a reader fold several records of one key in a fixed order.
Files are read a slice of records at a time: one `pickle.load` per record from a file
made reading back three times slower than sorting in memory; by slices it is on par.
"""

from __future__ import annotations

import heapq
import logging
import pickle
import shutil
import tempfile
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

logger = logging.getLogger(__name__)

CHUNK_BYTES = 32 * 1024 * 1024  # pickled bytes held before a chunk is written
FAN_IN = 64  # chunk files read at once; more are merged into fewer files first
OVERHEAD = 120  # bytes Python spends per buffered record besides its pickle
SLICE_BYTES = 128 * 1024  # pickled records read from a chunk file at once
_first = itemgetter(0)
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_loads = pickle.loads


class KeySorter:
    """Collect `(key, value)` records, then read them back ordered by key.

    Use as a context manager: the temporary folder (created at the first spill only) is
    removed on leaving, on error too. Values must pickle; they come back as copies.
    """

    def __init__(self, chunk_bytes: int = CHUNK_BYTES, *, fan_in: int = FAN_IN) -> None:
        if chunk_bytes < 1 or fan_in < 2:
            raise ValueError(f"chunk_bytes {chunk_bytes} must be >= 1 and fan_in {fan_in} >= 2")
        self.chunk_bytes = chunk_bytes
        self.fan_in = fan_in
        self.added = 0  # records added
        self.chunks = 0  # chunk files written, merges included
        self._buffer: list[tuple[str, bytes]] = []
        self._held = 0
        self._folder: Path | None = None
        self._files: list[Path] = []

    def __enter__(self) -> KeySorter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop what is held and remove the temporary folder."""
        self._buffer, self._held, self._files = [], 0, []
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def add(self, key: str, value: Any) -> None:
        """Hold one record (pickled now: a compact, bounded copy)."""
        blob = pickle.dumps((key, self.added, value), _PROTOCOL)
        self.added += 1
        self._buffer.append((key, blob))
        self._held += len(blob) + len(key) + OVERHEAD
        if self._held >= self.chunk_bytes:
            self._spill()

    def _spill(self) -> None:
        """Write the buffer, sorted by key (stably), as the next chunk file."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="darkarchive-sort-"))
        self._buffer.sort(key=_first)
        path = self._next_path()
        with path.open("wb") as out:
            _write(out, (blob for _, blob in self._buffer))
        self._files.append(path)
        self._buffer, self._held = [], 0

    def _next_path(self) -> Path:
        assert self._folder is not None
        self.chunks += 1
        return self._folder / f"chunk-{self.chunks:06d}"

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """Every record added, by key; equal keys in the order they were added."""
        self._buffer.sort(key=_first)
        held = (_loads(blob) for _, blob in self._buffer)
        if not self._files:
            records: Iterator[tuple[str, int, Any]] = held
        else:
            while len(self._files) > self.fan_in:
                self._merge_files()
            # (key, order added, value): tuples that compare without a key function, and
            # whose values never meet, since no two records share an order number.
            records = heapq.merge(*(_read(path) for path in self._files), held)
        for key, _, value in records:
            yield key, value

    def groups(self) -> Iterator[tuple[str, Iterator[Any]]]:
        """Each key once, with its values in the order they were added."""
        for key, records in groupby(self, key=_first):
            yield key, (value for _, value in records)

    def _merge_files(self) -> None:
        """Merge consecutive runs of `fan_in` files into one file each."""
        merged: list[Path] = []
        for start in range(0, len(self._files), self.fan_in):
            group = self._files[start : start + self.fan_in]
            if len(group) == 1:
                merged.extend(group)
                continue
            path = self._next_path()
            with path.open("wb") as out:
                records = heapq.merge(*(_read(p) for p in group))
                _write(out, (pickle.dumps(r, _PROTOCOL) for r in records))
            for done in group:
                done.unlink()
            merged.append(path)
        self._files = merged


def _write(out: IO[bytes], blobs: Iterable[bytes]) -> None:
    """Pickled records as slices of about SLICE_BYTES: one `pickle.load` a slice."""
    part: list[bytes] = []
    size = 0
    for blob in blobs:
        part.append(blob)
        size += len(blob)
        if size >= SLICE_BYTES:
            pickle.dump(part, out, _PROTOCOL)
            part, size = [], 0
    if part:
        pickle.dump(part, out, _PROTOCOL)


def _read(path: Path) -> Iterator[tuple[str, int, Any]]:
    """The records of one chunk file, in order, a slice at a time."""
    with path.open("rb") as source:
        while True:
            try:
                part = pickle.load(source)
            except EOFError:
                return
            yield from map(_loads, part)
