"""Where a crawl finds Tor: its SOCKS port and how to reach its control port.

It travels from the CLI (which starts or checks tor) to the Scrapy components as settings,
so it holds only addresses and secret references, never a secret: settings are logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crawler.sources.model import SecretRef

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings


@dataclass(frozen=True)
class TorEndpoint:
    socks: str  # "127.0.0.1:9050"
    control: str | None = None  # "127.0.0.1:9051"
    cookie_file: str | None = None
    password: SecretRef | None = None

    @property
    def socks_url(self) -> str:
        return f"socks5h://{self.socks}"

    def proxy_for(self, username: str, password: str = "darkarchive") -> str:
        """The proxy URL of one isolation group: Tor gives each username its own circuits."""
        return f"socks5h://{username}:{password}@{self.socks}"

    def settings(self) -> dict[str, Any]:
        return {
            "TOR_SOCKS": self.socks,
            "TOR_CONTROL": self.control or "",
            "TOR_CONTROL_COOKIE_FILE": self.cookie_file or "",
            "TOR_CONTROL_PASSWORD_ENV": (self.password.env if self.password else None) or "",
            "TOR_CONTROL_PASSWORD_FILE": (self.password.file if self.password else None) or "",
        }

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> TorEndpoint | None:
        """None when the crawl was given no Tor: a Tor source then fetches nothing."""
        socks = settings.get("TOR_SOCKS") or ""
        if not socks:
            return None
        env = settings.get("TOR_CONTROL_PASSWORD_ENV") or None
        file = settings.get("TOR_CONTROL_PASSWORD_FILE") or None
        return cls(
            socks=socks,
            control=settings.get("TOR_CONTROL") or None,
            cookie_file=settings.get("TOR_CONTROL_COOKIE_FILE") or None,
            password=SecretRef(env=env, file=file) if (env or file) else None,
        )
