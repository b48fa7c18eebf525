"""Store fixtures: one real secantusdb server per session, one database per test."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pymongo
import pytest

from pipelines.store.archive import Archive
from pipelines.store.embedded import EmbeddedMongo

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pymongo.database import Database


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMongo]:
    with EmbeddedMongo(tmp_path_factory.mktemp("mongo")) as server:
        yield server


@pytest.fixture(scope="session")
def mongo_client(mongo_server: EmbeddedMongo) -> Iterator[pymongo.MongoClient]:
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def db(mongo_client: pymongo.MongoClient) -> Iterator[Database]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    mongo_client.drop_database(name)


@pytest.fixture
def archive(db: Database) -> Archive:
    store = Archive(db)
    store.ensure_indexes()
    return store
