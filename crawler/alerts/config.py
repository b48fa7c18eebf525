"""What `config/alerts.yaml` says: the health thresholds, and who is told and how.

The file holds no secret: a webhook URL with a token in it and an SMTP password are named
by environment variable or secret file (`{env: VAR}` or `{file: path}`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crawler.config_errors import ConfigFileError
from crawler.config_files import load_model
from crawler.sources.model import SecretRef
from pipelines.health import HealthThresholds

logger = logging.getLogger(__name__)

DEFAULT_ALERTS_CONFIG = Path(__file__).resolve().parents[2] / "config" / "alerts.yaml"
ALERTS_CONFIG_ENV = "DARKARCHIVE_ALERTS_CONFIG"


class AlertsConfigError(ConfigFileError):
    """An alerts file that cannot be used, with the file, the key and what was expected."""

    what = "alerts file"


class _Strict(BaseModel):
    """Unknown keys are typos in a hand-written YAML file: refuse them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandNotifier(_Strict):
    """The team's own command (`DARKARCHIVE_NOTIFY_COMMAND`), run once per finding."""

    enabled: bool = True
    #: seconds to wait for it; a command still running then is left to finish
    timeout: float = Field(default=30.0, gt=0)


class WebhookNotifier(_Strict):
    """A JSON POST of the run's findings (a chat hook, an incident tool)."""

    url: str | SecretRef
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | SecretRef) -> str | SecretRef:
        if isinstance(value, str):
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("expected an http(s):// URL, or {env: VAR} or {file: path}")
        return value


class EmailNotifier(_Strict):
    """A mail over SMTP; the password only from `{env: VAR}` or `{file: path}`."""

    model_config = ConfigDict(populate_by_name=True)

    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    username: str | None = None
    password: SecretRef | None = None
    starttls: bool = False
    #: CA bundle to verify the server's certificate with (a relay with a private CA);
    #: the system's CAs by default
    ca_file: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    subject_prefix: str = "[darkarchive]"


class Notify(_Strict):
    """Who is told; `min_severity: alert` leaves warnings to the logs and `darkarchive runs`."""

    min_severity: Literal["alert", "warning"] = "warning"
    command: CommandNotifier = Field(default_factory=CommandNotifier)
    webhook: WebhookNotifier | None = None
    email: EmailNotifier | None = None


class AlertsConfig(_Strict):
    """The whole `config/alerts.yaml`."""

    thresholds: HealthThresholds = Field(default_factory=HealthThresholds)
    notify: Notify = Field(default_factory=Notify)


def alerts_config_path() -> Path:
    """`DARKARCHIVE_ALERTS_CONFIG`, else the repository's config/alerts.yaml."""
    return Path(os.environ.get(ALERTS_CONFIG_ENV) or DEFAULT_ALERTS_CONFIG)


def load_alerts_config(path: Path | str | None = None) -> AlertsConfig:
    """Read and validate the alerts file; a missing default file means all defaults."""
    path = Path(path) if path is not None else alerts_config_path()
    missing = "no such alerts configuration file"
    if not path.is_file():
        if path == DEFAULT_ALERTS_CONFIG:
            return AlertsConfig()
        raise AlertsConfigError(path, [missing])
    return load_model(path, AlertsConfig, AlertsConfigError, missing)
