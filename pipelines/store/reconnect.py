"""Waiting for the database in the background: jittered pings until it answers again.

The crawl goes on while the database is away (its pages go to the spool), so the wait
must never run on Scrapy's reactor thread: a thread pings with a short timeout, backing
off with jitter (tenacity), and calls back once a ping succeeds.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import pymongo
from pymongo.errors import PyMongoError
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_random_exponential,
)

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

PING_TIMEOUT = 3.0


class Reconnector:
    """Pings `client` until it answers, then calls `on_back()` once (from its thread)."""

    def __init__(
        self,
        client: pymongo.MongoClient,
        on_back: Callable[[], None],
        *,
        max_wait: float = 10.0,
    ) -> None:
        self.client = client
        self.on_back = on_back
        self.max_wait = max_wait
        self.attempts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="archive-reconnect", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PING_TIMEOUT + 1)
            self._thread = None

    def _run(self) -> None:
        retrying = Retrying(
            retry=retry_if_exception_type(PyMongoError),
            wait=wait_random_exponential(multiplier=0.5, max=self.max_wait),
            stop=stop_when_event_set(self._stop),
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.attempts += 1
                    self.ping(self.client)
        except RetryError:  # stopped before the database came back
            return
        logger.warning("the archive database answers again (after %d ping(s))", self.attempts)
        self.on_back()

    @staticmethod
    def ping(client: pymongo.MongoClient, timeout: float = PING_TIMEOUT) -> None:
        """One ping, bounded in time (server selection included); raises if unanswered."""
        with pymongo.timeout(timeout):
            client.admin.command("ping")
