"""Session cookies for a source, read from the environment or a secrets file, never logged."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawler.sources.model import Source


class SessionSecretError(RuntimeError):
    """A cookie the source needs has no value where its definition says to look."""


def session_cookies(source: Source) -> dict[str, str]:
    """Cookie name → value; the error names where the value was expected, never the value."""
    cookies: dict[str, str] = {}
    for name, ref in source.session.cookies.items():
        if ref.env is not None:
            value = os.environ.get(ref.env)
            if not value:
                raise SessionSecretError(
                    f"source {source.id}: cookie {name!r} needs environment variable {ref.env}"
                )
        else:
            path = Path(os.path.expanduser(ref.file or ""))
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SessionSecretError(
                    f"source {source.id}: cookie {name!r} needs the secrets file {path} ({exc})"
                ) from exc
        cookies[name] = value
    return cookies
