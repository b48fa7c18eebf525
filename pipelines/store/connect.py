"""Open the archive database: a configured MongoDB server, else an embedded one."""

from __future__ import annotations

import logging
import os
import re
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pymongo
from pymongo.errors import PyMongoError

from pipelines.store.service import ClientRegistration, ensure_service

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from pymongo.database import Database
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

_CREDENTIALS = re.compile(r"^(mongodb(?:\+srv)?://)([^@/]*)@")
# Query options that carry secrets (tlsCertificateKeyFilePassword, AWS session tokens...).
_SECRET_OPTIONS = re.compile(
    r"(?i)([?&][^=&]*(?:password|secret|token|authmechanismproperties)[^=&]*=)[^&]*"
)


def redact_uri(uri: str) -> str:
    """Hide the password (keep the user) so a URI can be logged or shown."""

    def _hide(match: re.Match[str]) -> str:
        user = match.group(2).split(":", 1)[0]
        return f"{match.group(1)}{user}:***@" if ":" in match.group(2) else match.group(0)

    return _SECRET_OPTIONS.sub(r"\1***", _CREDENTIALS.sub(_hide, uri.strip()))


def darkarchive_home() -> Path:
    """Where darkarchive keeps its data: `DARKARCHIVE_HOME`, else ./var."""
    return Path(os.environ.get("DARKARCHIVE_HOME", "var")).resolve()


def database_name() -> str:
    """`DARKARCHIVE_DB`, else `darkarchive`."""
    return os.environ.get("DARKARCHIVE_DB", "darkarchive")


def configured_uri() -> str | None:
    """`MONGODB_URI`, or the content of the file `MONGODB_URI_FILE` names (for secrets)."""
    uri = os.environ.get("MONGODB_URI", "").strip()
    if uri:
        return uri
    path = os.environ.get("MONGODB_URI_FILE", "").strip()
    if path:
        try:
            uri = Path(path).read_text().strip()
        except OSError as exc:
            raise ArchiveUnavailableError(f"MONGODB_URI_FILE {path}: {exc.strerror}") from exc
        if not uri:
            raise ArchiveUnavailableError(f"MONGODB_URI_FILE {path} is empty")
        return uri
    return None


def _without_secrets(text: str, uri: str) -> str:
    """`text` with the URI's password (if any) masked, for an error message."""
    match = _CREDENTIALS.match(uri.strip())
    password = match.group(2).partition(":")[2] if match else ""
    return text.replace(password, "***") if password else text


def close_client(client: pymongo.MongoClient) -> None:
    """Close without waiting on a dead server: closing ends the client's sessions there,
    and with the server gone (killed, or its supervisor was) that waited out server
    selection, 30 s, on every command's exit."""
    with pymongo.timeout(3.0):
        client.close()


class ArchiveUnavailableError(RuntimeError):
    """The configured database does not answer; nothing was read or written."""


class ArchiveConnection:
    """A pymongo client and database; on the embedded server, this process's registration."""

    def __init__(
        self,
        client: pymongo.MongoClient,
        db_name: str,
        uri: str,
        registration: ClientRegistration | None,
    ) -> None:
        self.client = client
        self.db: Database = client[db_name]
        self.uri_redacted = redact_uri(uri)
        self.embedded = registration is not None
        self._registration = registration

    def close(self) -> None:
        close_client(self.client)
        if self._registration is not None:
            self._registration.release()

    def __enter__(self) -> ArchiveConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_database(*, data_dir: Path, db_name: str = "darkarchive") -> ArchiveConnection:
    """Connect to `MONGODB_URI` if configured, else to the embedded service on `data_dir`
    (started if none runs there)."""
    uri = configured_uri()
    registration: ClientRegistration | None = None
    if uri is None:
        service, registration = ensure_service(data_dir)
        uri = service.uri
    try:
        client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
    except (PyMongoError, ValueError) as exc:  # malformed: say so in one line, never the URI
        if registration is not None:
            registration.release()
        reason = _without_secrets(str(exc).split(". Hint:")[0], uri)
        message = f"MONGODB_URI is not a usable MongoDB URI: {reason}"
        raise ArchiveUnavailableError(message) from None
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        close_client(client)
        if registration is not None:
            registration.release()
        raise ArchiveUnavailableError(
            f"cannot reach the archive database at {redact_uri(uri)}: {type(exc).__name__}"
        ) from exc
    except BaseException:
        close_client(client)
        if registration is not None:
            registration.release()
        raise
    logger.info("archive database %s on %s", db_name, redact_uri(uri))
    return ArchiveConnection(client, db_name, uri, registration)


def settings_database(settings: BaseSettings) -> tuple[Database, Callable[[], None]]:
    """The archive a crawl's components use, and how to let go of it.

    `ARCHIVE_MONGO_URI` (the CLI passes its embedded server's), else MONGODB_URI or the
    embedded service on `ARCHIVE_DATA_DIR`, so `scrapy crawl` and `darkarchive crawl` write
    to the same archive.
    """
    name = settings.get("ARCHIVE_DB_NAME") or database_name()
    uri = settings.get("ARCHIVE_MONGO_URI") or ""
    if uri:
        client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
        return client[name], partial(close_client, client)
    data_dir = Path(settings.get("ARCHIVE_DATA_DIR") or darkarchive_home() / "mongo")
    connection = open_database(data_dir=data_dir, db_name=name)
    return connection.db, connection.close
