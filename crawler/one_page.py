"""One page fetched as the crawler would fetch it, outside a crawl (save-page, session check)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawler.sources.model import Source


def fetch_page(
    source: Source,
    url: str,
    cookies: dict[str, str] | None = None,
    user_agent: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """GET `url`: through Tor for a Tor source (raising TorUnavailable without one), never
    redirected, with the source's user agent. OSError for anything that failed on the way."""
    import httpx2

    from crawler.settings import USER_AGENT

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
                timeout=60,
                trust_env=False,
                headers={"User-Agent": user_agent or USER_AGENT},
                cookies=cookies or {},
            )
        )
        try:
            response = client.get(url)
        except httpx2.HTTPError as error:
            raise OSError(str(error) or type(error).__name__) from error
        return response.status_code, dict(response.headers), response.content
