"""Session cookies come from the environment or a secrets file, and errors never show them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from crawler.session import SessionSecretError, session_cookies
from crawler.sources.loader import load_source
from crawler.sources.model import SecretRef, Session

if TYPE_CHECKING:
    from pathlib import Path

    from crawler.sources.model import Source


def _source_with(cookies: dict[str, SecretRef]) -> Source:
    return load_source("demo").model_copy(update={"session": Session(cookies=cookies)})


def test_values_come_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "market.cookie"
    secret.write_text("s3cr3t-file-value\n", encoding="utf-8")
    monkeypatch.setenv("DEMO_SID", "s3cr3t-env-value")
    source = _source_with({"sid": SecretRef(env="DEMO_SID"), "pass": SecretRef(file=str(secret))})
    assert session_cookies(source) == {"sid": "s3cr3t-env-value", "pass": "s3cr3t-file-value"}


def test_missing_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_SID", raising=False)
    with pytest.raises(
        SessionSecretError, match="cookie 'sid' needs environment variable DEMO_SID"
    ):
        session_cookies(_source_with({"sid": SecretRef(env="DEMO_SID")}))


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.cookie"
    with pytest.raises(SessionSecretError, match=f"needs the secrets file {path}"):
        session_cookies(_source_with({"sid": SecretRef(file=str(path))}))


def test_a_secret_ref_holds_a_place_never_a_value() -> None:
    with pytest.raises(ValueError, match="give exactly one of env or file"):
        SecretRef(env="A", file="/b")
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        SecretRef.model_validate({"value": "s3cr3t"})
