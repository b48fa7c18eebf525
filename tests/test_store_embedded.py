"""The embedded secantusdb server and the MONGODB_URI switch, with real processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pipelines.store.connect import ArchiveUnavailableError, open_database, redact_uri
from pipelines.store.embedded import DataDirLockedError, EmbeddedMongo
from pipelines.store.service import ServiceInfo, pid_alive

if TYPE_CHECKING:
    from pathlib import Path


def test_start_stop_leaves_no_process(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path) as server:
        pid = server.pid
        assert pid is not None and pid_alive(pid)
        assert (tmp_path / "secantus.pid").read_text().strip() == str(pid)
        assert server.uri.startswith("mongodb://127.0.0.1:")
    assert not pid_alive(pid)
    assert not (tmp_path / "secantus.pid").exists()


def test_second_server_on_same_folder_is_a_clear_error(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path) as first:
        second = EmbeddedMongo(tmp_path)
        with pytest.raises(DataDirLockedError, match=r"another darkarchive/secantus process"):
            second.start()
        assert second.pid is None
        assert (tmp_path / "secantus.pid").read_text().strip() == str(first.pid)


def test_open_database_embedded_stops_with_its_last_client_at_idle_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.delenv("MONGODB_URI_FILE", raising=False)
    monkeypatch.setenv("DARKARCHIVE_DB_IDLE", "0")
    with open_database(data_dir=tmp_path, db_name="x") as conn:
        assert conn.embedded
        info = ServiceInfo.read(tmp_path)
        assert info is not None and pid_alive(info.server_pid)
        conn.db.t.insert_one({"a": 1})
    assert not pid_alive(info.pid) and not pid_alive(info.server_pid)
    assert not (tmp_path / "server.json").exists()


def test_open_database_uses_mongodb_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mongo_server: EmbeddedMongo
) -> None:
    monkeypatch.setenv("MONGODB_URI", mongo_server.uri)
    with open_database(data_dir=tmp_path, db_name="uri_test") as conn:
        assert not conn.embedded
        assert conn.uri_redacted == mongo_server.uri
        conn.db.t.insert_one({"a": 1})
        assert conn.client.address == ("127.0.0.1", int(mongo_server.uri.rsplit(":", 1)[1][:-1]))
        conn.client.drop_database("uri_test")
    assert not (tmp_path / "db").exists()  # no embedded server was started


def test_open_database_uses_mongodb_uri_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mongo_server: EmbeddedMongo
) -> None:
    secret = tmp_path / "uri"
    secret.write_text(mongo_server.uri + "\n")
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.setenv("MONGODB_URI_FILE", str(secret))
    with open_database(data_dir=tmp_path / "data") as conn:
        assert not conn.embedded
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("mongodb://u:p4ss@h:27017/db", "mongodb://u:***@h:27017/db"),
        (
            "mongodb+srv://user:s3cr%40t@cluster.example/x",
            "mongodb+srv://user:***@cluster.example/x",
        ),
        ("mongodb://h1,h2/?replicaSet=rs", "mongodb://h1,h2/?replicaSet=rs"),
        ("mongodb://user@h/", "mongodb://user@h/"),
        (
            "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=pw&replicaSet=rs",
            "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***&replicaSet=rs",
        ),
        (
            "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:t",
            "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=***",
        ),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("mongodb://u:s3cret@h:notaport/", "Port contains non-digit characters"),
        ("http://u:s3cret@h/", "Invalid URI scheme"),
        ("mongodb://", "Must provide at least one hostname or IP"),
    ],
)
def test_a_malformed_mongodb_uri_is_one_line_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str, said: str
) -> None:
    monkeypatch.setenv("MONGODB_URI", uri)
    with pytest.raises(ArchiveUnavailableError) as raised:
        open_database(data_dir=tmp_path)
    message = str(raised.value)
    assert message.startswith("MONGODB_URI is not a usable MongoDB URI: ") and said in message
    assert "s3cret" not in message


def test_the_embedded_data_folder_is_its_owners_only(tmp_path: Path) -> None:
    data = tmp_path / "mongo"
    with EmbeddedMongo(data):
        assert data.stat().st_mode & 0o777 == 0o700
