"""Open the archive database: a configured MongoDB server, else an embedded one."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pymongo
from pymongo.errors import PyMongoError

from pipelines.store.embedded import EmbeddedMongo

if TYPE_CHECKING:
    from types import TracebackType

    from pymongo.database import Database

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


class ArchiveUnavailableError(RuntimeError):
    """The configured database does not answer; nothing was read or written."""


class ArchiveConnection:
    """A pymongo client and database, plus the embedded server when we started one."""

    def __init__(
        self, client: pymongo.MongoClient, db_name: str, uri: str, server: EmbeddedMongo | None
    ) -> None:
        self.client = client
        self.db: Database = client[db_name]
        self.uri_redacted = redact_uri(uri)
        self.embedded = server is not None
        self._server = server

    def close(self) -> None:
        self.client.close()
        if self._server is not None:
            self._server.stop()

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
    """Connect to `MONGODB_URI` if configured, else start an embedded server on `data_dir`."""
    uri = configured_uri()
    server: EmbeddedMongo | None = None
    if uri is None:
        server = EmbeddedMongo(data_dir).start()
        uri = server.uri
    client: pymongo.MongoClient = pymongo.MongoClient(uri, tz_aware=True)
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        client.close()
        if server is not None:
            server.stop()
        raise ArchiveUnavailableError(
            f"cannot reach the archive database at {redact_uri(uri)}: {type(exc).__name__}"
        ) from exc
    except BaseException:
        client.close()
        if server is not None:
            server.stop()
        raise
    logger.info("archive database %s on %s", db_name, redact_uri(uri))
    return ArchiveConnection(client, db_name, uri, server)
