"""One page fetched as the crawler would fetch it, outside a crawl (save-page, session check).

The crawl's own limits hold here too: a body past `DOWNLOAD_MAXSIZE` (counted on the wire
and after decompression, so a gzip bomb stops early) or a download still running after the
source's `politeness.timeout` (an endless or trickling stream) is cut off and refused.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx2

    from crawler.sources.model import Source

logger = logging.getLogger(__name__)


class DownloadLimitError(OSError):
    """The response broke one of the crawl's download limits; nothing of it is kept."""


def download_limits(source: Source) -> tuple[int, int, float]:
    """(max size, warn size, total seconds): the crawl's settings and the source's timeout."""
    from crawler import settings

    return settings.DOWNLOAD_MAXSIZE, settings.DOWNLOAD_WARNSIZE, source.politeness.timeout


def fetch_page(
    source: Source,
    url: str,
    cookies: dict[str, str] | None = None,
    user_agent: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """GET `url`: through Tor for a Tor source (raising TorUnavailable without one), never
    redirected, with the source's user agent and the crawl's download limits.

    OSError for anything that failed on the way; DownloadLimitError (an OSError) for a body
    too large or a download too slow.
    """
    import httpx2

    from crawler.settings import USER_AGENT

    maxsize, warnsize, seconds = download_limits(source)
    with ExitStack() as stack:
        proxy = None
        if source.network == "tor":
            from crawler.tor.config import load_tor_config
            from crawler.tor.service import open_tor, show_progress
            from crawler.tor.socks_errors import teach_socks_client

            teach_socks_client()
            endpoint = stack.enter_context(open_tor(load_tor_config(), show_progress))
            proxy = endpoint.proxy_for(source.socks_username)
        client = stack.enter_context(
            httpx2.Client(
                proxy=proxy,
                timeout=seconds,
                trust_env=False,
                headers={"User-Agent": user_agent or USER_AGENT},
                cookies=cookies or {},
            )
        )
        try:
            with client.stream("GET", url) as response:
                body = _read_limited(response, url, maxsize, warnsize, seconds)
                return response.status_code, dict(response.headers), body
        except httpx2.HTTPError as error:
            raise OSError(str(error) or type(error).__name__) from error


def _read_limited(
    response: httpx2.Response, url: str, maxsize: int, warnsize: int, seconds: float
) -> bytes:
    """The decoded body, refused once it (or what came over the wire) passes `maxsize`, or
    `seconds` after the headers came; a warning past `warnsize`, as Scrapy gives one.

    (Waiting for the headers, and for each chunk, is bounded by the client's timeout.)
    """
    deadline = time.monotonic() + seconds
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > maxsize:
        raise DownloadLimitError(
            f"{url} announces {int(announced)} bytes, over DOWNLOAD_MAXSIZE ({maxsize} bytes)"
        )
    chunks: list[bytes] = []
    size = 0
    warned = False
    for chunk in response.iter_bytes():
        size += len(chunk)
        if max(size, response.num_bytes_downloaded) > maxsize:
            raise DownloadLimitError(
                f"{url} cut off: the body grew past DOWNLOAD_MAXSIZE ({maxsize} bytes)"
            )
        if time.monotonic() > deadline:
            raise DownloadLimitError(
                f"{url} cut off: still downloading after {seconds:g} s (the source's "
                "politeness.timeout)"
            )
        if size > warnsize and not warned:
            logger.warning("%s: the body passed DOWNLOAD_WARNSIZE (%d bytes)", url, warnsize)
            warned = True
        chunks.append(chunk)
    return b"".join(chunks)
