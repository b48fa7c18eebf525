"""Run a page object so that a bad one costs its page, never the crawl.

A page object is code, and code can loop, raise, or call `sys.exit`. It runs here on a
daemon thread while the crawl's thread waits at most `timeout` seconds (the wait lets
signals through, so SIGTERM is still heard): an overrun, any exception, `SystemExit` and
`KeyboardInterrupt` included, or a result that is not an `Extraction`, becomes a failed
extraction of that page with the reason among its problems. A page object that never
returns keeps its thread; the page and the crawl move on. (What no thread can stop is
native code that holds the interpreter lock; page objects are installed code for that
reason, see `crawler.extraction.registry`.)
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from crawler.extraction.blueprint import Extraction
from crawler.extraction.registry import resolve_page_object

if TYPE_CHECKING:
    from scrapy.http import TextResponse

logger = logging.getLogger(__name__)

#: seconds a page object may take on one page when its blueprint does not say
TIMEOUT = 20.0


def _failed(reason: str) -> Extraction:
    return Extraction(fields={}, missing=["page_object"], coverage=0.0, problems=[reason])


def run_page_object(name: str, response: TextResponse, timeout: float = TIMEOUT) -> Extraction:
    """The page object's extraction of `response`, or a failed one saying why."""
    page_object = resolve_page_object(name)
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["result"] = page_object(response)
        except BaseException as exc:  # SystemExit from a page object must not end the crawl
            outcome["error"] = exc

    worker = threading.Thread(target=call, name=f"page-object {name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        logger.error("page object %s still running after %s s on %s", name, timeout, response.url)
        return _failed(
            f"page object {name} did not finish within {timeout:g} s on {response.url}; "
            "page abandoned"
        )
    if "error" in outcome:
        error = outcome["error"]
        logger.error("page object %s failed on %s: %r", name, response.url, error)
        return _failed(f"page object {name} raised {type(error).__name__}: {error}")
    result = outcome.get("result")
    if not isinstance(result, Extraction):
        return _failed(f"page object {name} returned {type(result).__name__}, not an Extraction")
    return result
