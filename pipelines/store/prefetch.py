"""Read a cursor's next batch while the caller works on this one.

pymongo fetches a cursor's batches on demand, so a reader that formats every row (an
export) and the server that produces them take turns, each idle half the time. A thread
that iterates the cursor into a short queue lets the two overlap on two cores; the
queue's bound keeps memory at a few batches however long the cursor.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable

logger = logging.getLogger(__name__)

AHEAD = 2  # batches read ahead of the caller
_END = object()


def prefetched(read: Callable[[], Iterable[Any]], batch: int = 2000) -> Generator[Any]:
    """Yield what `read()` yields, read by a helper thread `batch` items at a time.

    `read` is called in the thread (it opens the cursor there). An error in the thread
    is raised here, in the caller; a caller that stops early stops the thread.
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fill() -> None:
        chunk: list[Any] = []
        try:
            for item in read():
                chunk.append(item)
                if len(chunk) >= batch:
                    if not put(chunk):
                        return
                    chunk = []
        except BaseException as exc:  # handed to the caller after what came before it
            if not chunk or put(chunk):
                put(exc)
            return
        if not chunk or put(chunk):
            put(_END)

    thread = threading.Thread(target=fill, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            chunk = ready.get()
            if chunk is _END:
                return
            if isinstance(chunk, BaseException):
                raise chunk
            yield from chunk
    finally:
        stop.set()
        thread.join()
