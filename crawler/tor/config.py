"""How darkarchive reaches Tor: a tor it manages itself, or one the team already runs.

Read from `config/tor.yaml` (or the file `DARKARCHIVE_TOR_CONFIG` names). The file holds
no secret: a control-port password is named by environment variable or secret file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crawler.sources.model import SecretRef

DEFAULT_TOR_CONFIG = Path(__file__).resolve().parents[2] / "config" / "tor.yaml"
_LOOPBACK_ADDRESS = re.compile(r"^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d{1,5}$")


class TorConfigError(ValueError):
    """A Tor configuration that cannot be used, with the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManagedTor(_Strict):
    """darkarchive starts `tor` itself, on loopback ports of its choosing, and stops it."""

    binary: str = "tor"
    #: empty: $DARKARCHIVE_HOME/tor (the guard state persists between crawls there)
    data_dir: str = ""
    #: further torrc options (bridges, a private test network's DirAuthority lines, …)
    options: dict[str, str | list[str]] = Field(default_factory=dict)


class ExternalTor(_Strict):
    """A tor the team runs: its SocksPort and ControlPort on this machine."""

    socks: str = "127.0.0.1:9050"
    control: str | None = "127.0.0.1:9051"
    #: cookie authentication: the tor's control_auth_cookie file
    cookie_file: str | None = None
    #: password authentication: where the password lives (never the password itself)
    password: SecretRef | None = None

    @field_validator("socks", "control")
    @classmethod
    def _loopback(cls, value: str | None) -> str | None:
        # A remote SocksPort would carry the team's traffic in clear to another machine.
        if value is not None and not _LOOPBACK_ADDRESS.match(value):
            raise ValueError(f"{value!r} is not a loopback host:port (e.g. 127.0.0.1:9050)")
        return value


class TorConfig(_Strict):
    """The whole `config/tor.yaml`."""

    mode: Literal["managed", "external"] = "managed"
    managed: ManagedTor = Field(default_factory=ManagedTor)
    external: ExternalTor = Field(default_factory=ExternalTor)
    #: how long to wait for tor to reach 100 % bootstrap before the crawl fails closed
    bootstrap_timeout: float = Field(default=300.0, gt=0)


def tor_config_path() -> Path:
    return Path(os.environ.get("DARKARCHIVE_TOR_CONFIG") or DEFAULT_TOR_CONFIG)


def load_tor_config(path: Path | None = None) -> TorConfig:
    """Read and validate the Tor configuration; a missing default file means all defaults."""
    path = path or tor_config_path()
    if not path.is_file():
        if path == DEFAULT_TOR_CONFIG:
            return TorConfig()
        raise TorConfigError(f"{path}: no such Tor configuration file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return TorConfig.model_validate(data)
    except yaml.YAMLError as exc:
        raise TorConfigError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = [f"key {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise TorConfigError(f"{path}: " + "; ".join(problems)) from exc
