"""What to do when Tor fails a request: retry after a pause, new circuits, or stop.

Tor's SOCKS replies say why a request failed (see `crawler.tor.socks_errors`). Passing
failures of the onion service or the circuit are retried (by Scrapy's retry middleware,
after a jittered pause taken here); when they pile up the source gets a new identity
(NEWNYM), and when nothing gets through any more the source is marked down and the crawl
stops. A dead Tor stops the crawl at once: nothing is ever sent another way. Every one of
these decisions is recorded on the run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from scrapy.utils.defer import deferred_from_coro

from crawler.backoff import backoff_delay
from crawler.signals import record_run_event
from crawler.tor.control import TorControl, TorUnavailable
from crawler.tor.endpoint import TorEndpoint
from crawler.tor.socks_errors import classify

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from crawler.sources.model import Source
    from crawler.tor.socks_errors import TorFailure

logger = logging.getLogger(__name__)


class TorCircuitHealth:
    """Downloader middleware; its `process_exception` runs before the retry middleware's."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.endpoint = TorEndpoint.from_settings(settings)
        self.backoff_base = settings.getfloat("TOR_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("TOR_BACKOFF_MAX", 60.0)
        self.max_retries = settings.getint("RETRY_TIMES")
        self.failures_in_a_row = 0
        self.circuit_failures = 0
        self.new_identities = 0
        self.stopping: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TorCircuitHealth:
        return cls(crawler)

    @property
    def source(self) -> Source:
        return self.crawler.spider.source  # type: ignore[union-attr]

    def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get("tor"):
            self.failures_in_a_row = self.circuit_failures = 0
        return response

    async def process_exception(self, request: Request, exception: Exception) -> None:
        if not request.meta.get("tor"):
            return
        if self.stopping is not None:
            # A retry would be dropped by the closing scheduler, unrecorded: let the
            # request fail now so that the run records it as a failed page.
            request.meta["dont_retry"] = True
            return
        failure = classify(exception)
        if failure is None:
            return
        self.failures_in_a_row += 1
        attempt = request.meta.get("retry_times", 0) + 1
        self._count(f"tor/failures/{failure.kind}")
        self._record(
            "tor",
            f"attempt {attempt}: {failure.reason}: {exception}",
            request.url,
            {"code": failure.code, "action": failure.action, "attempt": attempt},
        )
        if failure.action != "retry":
            request.meta["dont_retry"] = True
            if failure.action == "tor_down":
                self._stop("tor_unavailable", f"Tor stopped answering ({failure.reason})")
            return
        if self.failures_in_a_row >= self.source.tor.down_after:
            request.meta["dont_retry"] = True
            self._stop(
                "source_down",
                f"source {self.source.id} marked down: {self.failures_in_a_row} requests "
                f"failed in a row through Tor, the last with {failure.reason}",
            )
            return
        if failure.circuit:
            self.circuit_failures += 1
            if self.circuit_failures >= self.source.tor.new_identity_after:
                self.circuit_failures = 0
                await self._new_identity(failure)
        if attempt <= self.max_retries and not request.meta.get("dont_retry"):
            await asyncio.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_max)

    async def _new_identity(self, failure: TorFailure) -> None:
        """NEWNYM through the control port; tor's own 10 s rate limit is waited out."""
        self.new_identities += 1
        number = self.new_identities
        try:
            waited = await asyncio.to_thread(self._signal_newnym)
        except (TorUnavailable, OSError) as exc:
            self._record("tor", f"new identity #{number} not possible: {exc}")
            return
        self._count("tor/new_identities")
        self._record(
            "tor",
            f"new identity #{number} (NEWNYM) after {self.source.tor.new_identity_after} "
            f"circuit failures, the last {failure.reason}",
            None,
            {"waited_s": round(waited, 1)},
        )
        logger.warning("source %s: new Tor identity #%d", self.source.id, number)

    def _signal_newnym(self) -> float:
        if self.endpoint is None:
            raise TorUnavailable("no Tor endpoint")
        with TorControl.connect(self.endpoint) as control:
            return control.new_identity()

    def _stop(self, close_reason: str, reason: str) -> None:
        logger.error("%s; stopping the crawl", reason)
        self._record("tor", reason)
        self.stopping = deferred_from_coro(
            self.crawler.engine.close_spider_async(reason=close_reason)  # type: ignore[union-attr]
        )

    def _record(
        self, kind: str, reason: str, url: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        record_run_event(self.crawler, kind, reason, url, detail)

    def _count(self, key: str) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key)
