"""Secrets a crawl needs (session cookies, Tor's control password), never from the repo or logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

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


def cookie_names(source: Source) -> list[str]:
    """The names of the market's session cookies, as far as anyone has said.

    The source file's references and its `session.cookie`, else the names stored by the
    last `darkarchive session set` (renewing a session keeps its names); empty when
    nobody has said, for a guess ("session") would store a cookie the market never reads.
    """
    from crawler.session_store import load_session

    declared = list(source.session.cookies)
    if source.session.cookie and source.session.cookie not in declared:
        declared.append(source.session.cookie)
    if declared:
        return declared
    stored = load_session(source.id)
    return sorted(stored.cookies) if stored else []


def named_hosts(source: Source) -> set[str]:
    """Hosts the source names: its mirrors' and `tor.allow_hosts` (lower case)."""
    hosts = {urlsplit(mirror).hostname or "" for mirror in source.mirrors}
    return {host.lower() for host in hosts | set(source.tor.allow_hosts) if host}


def may_receive_session(source: Source, url: str) -> bool:
    """Whether `url` is on a host the source names; ports do not count, as for cookies."""
    return (urlsplit(url).hostname or "").lower() in named_hosts(source)
