"""The archive's writer thread: a crawl's database writes, in order, off the reactor thread.

Every write used to be a synchronous pymongo call on Twisted's reactor thread, so fetching
and parsing stopped for each round trip and the crawl's CPU and the database's took turns.
One thread per crawl now runs the writes, strictly in the order they were submitted (a
page's records follow its page, an event stays where it happened, the run closes after
its last page), and hands each result back to the reactor as a Deferred.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

T = TypeVar("T")

_STOP = object()


class WriterStoppedError(RuntimeError):
    """A write submitted after the writer stopped (the run is closed): it never ran."""


class WriterThread:
    """Runs submitted calls one at a time, in submission order, on one thread.

    `submit` is called on the reactor thread; its Deferred fires there with the call's
    result (or its exception as a Failure). `pending` counts the calls submitted and not yet
    answered, so a caller can bound what waits. When the queue has been empty for
    `idle_after` seconds after some work, `on_idle` runs on the writer thread (the pipeline
    writes pages it queued for a bulk, so they do not wait for the next page to come).
    `call_from_thread` carries answers to the submitting thread (default: the reactor's).
    """

    def __init__(
        self,
        name: str = "archive-writer",
        *,
        on_idle: Callable[[], None] | None = None,
        idle_after: float | None = None,
        call_from_thread: Callable[..., Any] | None = None,
    ) -> None:
        if call_from_thread is None:
            from twisted.internet import reactor

            call_from_thread = reactor.callFromThread  # type: ignore[attr-defined]
        self._call_from_thread = call_from_thread
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._on_idle = on_idle
        self._idle_after = idle_after if on_idle is not None else None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.pending = 0
        self.stopped = False

    def start(self) -> WriterThread:
        self._thread.start()
        return self

    def submit(self, fn: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        """Queue `fn(*args)` after everything submitted before; reactor thread only."""
        if self.stopped:
            return defer.fail(WriterStoppedError(f"the archive writer has stopped: {fn!r}"))
        done: defer.Deferred[T] = defer.Deferred()
        self.pending += 1
        self._queue.put((fn, args, done))
        return done

    def stop(self, timeout: float | None = None) -> None:
        """Run what is queued, then end the thread (waits up to `timeout` seconds)."""
        if self.stopped:
            return
        self.stopped = True
        self._queue.put(_STOP)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        worked = False
        while True:
            try:
                task = self._queue.get(timeout=self._idle_after if worked else None)
            except queue.Empty:
                worked = False
                self._idle()
                continue
            if task is _STOP:
                return
            worked = True
            fn, args, done = task
            try:
                result: Any = fn(*args)
            except BaseException:  # handed to the Deferred, and logged in case none looks
                logger.exception("archive writer: %r failed", fn)
                result = Failure()
            self._call_from_thread(self._answer, done, result)

    def _idle(self) -> None:
        assert self._on_idle is not None
        try:
            self._on_idle()
        except Exception:  # the callback records its own failures; never end the thread
            logger.exception("archive writer: the idle write failed")

    def _answer(self, done: defer.Deferred[Any], result: Any) -> None:
        self.pending -= 1
        if isinstance(result, Failure):
            done.errback(result)
        else:
            done.callback(result)


class InlineWriter:
    """The same interface, every call made at once on the caller's thread (the reactor):
    the write path as it was, for `ARCHIVE_WRITER_THREAD = False` and for comparisons."""

    def __init__(self) -> None:
        self.pending = 0
        self.stopped = False

    def start(self) -> InlineWriter:
        return self

    def submit(self, fn: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        if self.stopped:
            return defer.fail(WriterStoppedError(f"the archive writer has stopped: {fn!r}"))
        return defer.maybeDeferred(fn, *args)

    def stop(self, timeout: float | None = None) -> None:
        self.stopped = True
