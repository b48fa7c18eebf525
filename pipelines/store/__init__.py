"""The MongoDB archive: embedded server, versioned writes, queries."""

from __future__ import annotations

import logging

from pipelines.store.archive import Archive
from pipelines.store.connect import ArchiveConnection, open_database, redact_uri
from pipelines.store.embedded import DataDirLockedError, EmbeddedMongo, EmbeddedMongoError
from pipelines.store.model import (
    BatchSummary,
    CloseSummary,
    EntityObservation,
    PageRecord,
    Provenance,
    RunRef,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Archive",
    "ArchiveConnection",
    "BatchSummary",
    "CloseSummary",
    "DataDirLockedError",
    "EmbeddedMongo",
    "EmbeddedMongoError",
    "EntityObservation",
    "PageRecord",
    "Provenance",
    "RunRef",
    "open_database",
    "redact_uri",
]
