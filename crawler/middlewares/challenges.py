"""Pages that are not content get an answer before the spider sees them.

A market under load or defending itself answers with a DDoS queue, a 429 or 503, a
CAPTCHA or a login page, often with HTTP 200. Each response's page state is decided here
with the source's own detectors (`crawler.pagestate`), and then:

- a queue page is waited out (its meta-refresh delay); then the pass link its refresh
  names is followed (the market redirects from there to the queued page), or, when it names
  none, the same URL is asked again with the pass cookie the queue handed out;
- `rate_limited` and `maintenance` pages are asked again after a jittered backoff that
  honours `Retry-After`;
- a CAPTCHA is asked again a few times after a backoff (no CAPTCHA is ever solved);
- a login wall means the session is gone: the source is paused, the crawl stops instead
  of collecting login pages, and the team is told (run status, log line, notify command).

Whatever is still a challenge after its retries reaches the spider and is recorded with
its state; it is never extracted as content. Every decision is a run event.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from scrapy.http import TextResponse
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.response import get_meta_refresh

from crawler.alerts.command import notify_command, start_notify_command
from crawler.backoff import backoff_delay, parse_retry_after
from crawler.pagestate import classify
from crawler.session_store import mark_session
from crawler.signals import record_run_event

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from crawler.sources.model import Source

logger = logging.getLogger(__name__)

_REFRESH = re.compile(r"^\s*(\d+(?:\.\d+)?)")
_REFRESH_URL = re.compile(r"[;,]\s*url\s*=\s*(\S.*)$", re.IGNORECASE)


class ChallengeHandling:
    """Downloader middleware, after the cookie middleware has taken the response's cookies."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.queue_waits = settings.getint("CHALLENGE_QUEUE_WAITS", 5)
        self.queue_max_wait = settings.getfloat("CHALLENGE_QUEUE_MAX_WAIT", 60.0)
        self.backoff_retries = settings.getint("CHALLENGE_BACKOFF_RETRIES", 5)
        self.captcha_retries = settings.getint("CHALLENGE_CAPTCHA_RETRIES", 2)
        self.backoff_base = settings.getfloat("CHALLENGE_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("CHALLENGE_BACKOFF_MAX", 300.0)
        self.notify_command = notify_command(settings.get("NOTIFY_COMMAND"))
        self.paused: str | None = None
        self.closing: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ChallengeHandling:
        return cls(crawler)

    @property
    def source(self) -> Source:
        return self.crawler.spider.source  # type: ignore[union-attr]

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        source = getattr(self.crawler.spider, "source", None)
        if source is None or request.meta.get("dont_challenge"):
            return response
        state = classify(source, response, request.meta.get("kind", "index"))
        request.meta["page_state"] = state  # read_page need not classify it again
        if state == "queue":
            return await self._wait_in_queue(request, response)
        if state in ("rate_limited", "maintenance"):
            retry_after = parse_retry_after(response.headers.get(b"Retry-After"))
            return await self._back_off(request, response, state, self.backoff_retries, retry_after)
        if state == "captcha":
            return await self._back_off(request, response, state, self.captcha_retries, None)
        if state == "login_wall":
            self._pause(request, response)
        return response

    async def _wait_in_queue(self, request: Request, response: Response) -> Request | Response:
        waits = request.meta.get("queue_waits", 0)
        seconds, link = _refresh(response)
        if waits >= self.queue_waits:
            # Recorded as it is: Scrapy's meta-refresh must not follow its link after all.
            request.meta["dont_redirect"] = True
            self._record(f"still queued after {waits} waits; recorded as a queue page", request)
            self._count("challenges/queue_given_up")
            return response
        delay = min(self.queue_max_wait, seconds or 5.0)
        if link is not None and link != response.url:
            # The pass link often carries the queue's token: the event shows only its path.
            then = f"following the pass link it names ({urlsplit(link).path or '/'})"
        else:
            link, then = None, "asking again"
        self._record(f"DDoS queue: waiting {delay:.1f} s, then {then}", request)
        self._count("challenges/queue")
        await asyncio.sleep(delay)
        again = self._again(request, queue_waits=waits + 1)
        return again if link is None else again.replace(url=link)

    async def _back_off(
        self,
        request: Request,
        response: Response,
        state: str,
        retries: int,
        retry_after: float | None,
    ) -> Request | Response:
        attempt = request.meta.get("challenge_retries", 0) + 1
        if attempt > retries:
            self._record(f"{state} after {retries} retries; recorded as such", request)
            return response
        delay = backoff_delay(
            attempt, base=self.backoff_base, cap=self.backoff_max, retry_after=retry_after
        )
        told = f", Retry-After {retry_after:g} s" if retry_after is not None else ""
        self._record(
            f"{state} (HTTP {response.status}{told}): retry {attempt}/{retries} in {delay:.1f} s",
            request,
        )
        self._count(f"challenges/{state}")
        await asyncio.sleep(delay)
        return self._again(request, challenge_retries=attempt)

    def _again(self, request: Request, **counters: int) -> Request:
        meta = {k: v for k, v in request.meta.items() if k != "page_state"}
        return request.replace(dont_filter=True, meta={**meta, **counters})

    def _pause(self, request: Request, response: Response) -> None:
        """The session is dead: stop asking, and tell the team once."""
        if self.paused is not None:
            return
        self.paused = (
            f"source {self.source.id} paused: a login page at {response.url} means the "
            "session expired or was never valid; set a fresh one with "
            f"`darkarchive session set {self.source.id}`"
        )
        logger.error("%s; stopping the crawl", self.paused)
        self._record(self.paused, request, kind="session")
        run = self.crawler.stats.get_value("darkarchive/run_id", "")  # type: ignore[union-attr]
        mark_session(self.source.id, "expired", f"login page at {response.url} in run {run}")
        self._notify()
        self.crawler.stats.set_value("darkarchive/paused", self.paused)  # type: ignore[union-attr]
        self.closing = deferred_from_coro(  # kept: an unreferenced task may be collected
            self.crawler.engine.close_spider_async(reason="session_expired")  # type: ignore[union-attr]
        )

    def _notify(self) -> None:
        """Run the team's notify command (a mail, a chat hook) with what happened."""
        if not self.notify_command:
            return
        run = str(self.crawler.stats.get_value("darkarchive/run_id", ""))  # type: ignore[union-attr]
        try:
            start_notify_command(
                self.notify_command,
                event="session_expired",
                source=self.source.id,
                run=run,
                reason=self.paused or "",
            )
        except OSError as exc:
            logger.error("notify command failed: %s", exc)
            self._record(f"notify command failed: {exc}", None, kind="session")
            return
        self._record("the team was notified (notify command)", None, kind="session")

    def _record(self, reason: str, request: Request | None, kind: str = "challenge") -> None:
        record_run_event(self.crawler, kind, reason, request.url if request is not None else None)

    def _count(self, key: str) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(key)


def _refresh(response: Response) -> tuple[float | None, str | None]:
    """The delay and the absolute link (if it names one) of a Refresh header or of
    `<meta http-equiv="refresh" content="N; url=…">`."""
    header = response.headers.get(b"Refresh")
    content: Any = header.decode("latin-1") if header else None
    if content is None and isinstance(response, TextResponse):
        seconds, link = get_meta_refresh(response)  # w3lib's reading, as Scrapy's own
        if link is not None:
            return seconds, link
        content = response.xpath(
            "//meta[translate(@http-equiv,'REFSH','refsh')='refresh']/@content"
        ).get()
    match = _REFRESH.match(content or "")
    seconds = float(match.group(1)) if match else None
    named = _REFRESH_URL.search(content or "")
    return seconds, urljoin(response.url, named.group(1).strip(" '\"")) if named else None
