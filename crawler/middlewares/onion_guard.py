"""Fail closed: a request to a `.onion` host never leaves without a Tor SOCKS proxy.

Sent without the proxy, Scrapy would ask the system resolver for the onion name: a DNS
query that tells the network which hidden service the team watches. This guard runs
before the download handler; Tor routing sets `meta["proxy"]` to a `socks5h://` URL.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest

if TYPE_CHECKING:
    from scrapy import Request

logger = logging.getLogger(__name__)


class RefusedOnion(IgnoreRequest):
    """An onion request without Tor: refused, never resolved."""


def is_onion(url: str) -> bool:
    return (urlsplit(url).hostname or "").rstrip(".").endswith(".onion")


class OnionGuard:
    """Downloader middleware, first in line."""

    def process_request(self, request: Request) -> None:
        if is_onion(request.url) and not str(request.meta.get("proxy", "")).startswith(
            "socks5h://"
        ):
            raise RefusedOnion(f"refused {request.url}: an onion host needs Tor (socks5h proxy)")
