"""Secrets a crawl needs (session cookies, Tor's control password), never from the repo or logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawler.sources.model import SecretRef, Source


class SessionSecretError(RuntimeError):
    """A secret has no value where its reference says to look."""


def read_secret(ref: SecretRef, what: str) -> str:
    """The secret's value; the error names where it was expected, never a value."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if not value:
            raise SessionSecretError(f"{what} needs environment variable {ref.env}")
        return value
    path = Path(os.path.expanduser(ref.file or ""))
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SessionSecretError(f"{what} needs the secrets file {path} ({exc})") from exc


def session_cookies(source: Source) -> dict[str, str]:
    """Cookie name → value for the source's session.

    The source file's references come first; a session a person stored with
    `darkarchive session set` is newer and wins for the names it has.
    """
    from crawler.session_store import load_session

    stored = load_session(source.id)
    newer = stored.cookies if stored else {}
    cookies = {
        name: read_secret(ref, f"source {source.id}: cookie {name!r}")
        for name, ref in source.session.cookies.items()
        if name not in newer
    }
    return {**cookies, **newer}
