"""Lone loopback tors: PID stop, fail closed in tor's words, no password leak, NEWNYM waits."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

import pytest
from subprocesses import pid_alive
from tor_helpers import TeamTor, control_address, hashed_password, lone_tor

from crawler.sources.model import SecretRef
from crawler.tor.config import (
    ExternalTor,
    ManagedTor,
    TorConfig,
    TorConfigError,
    load_tor_config,
)
from crawler.tor.control import NEWNYM_INTERVAL, Bootstrap, TorControl, TorUnavailable
from crawler.tor.endpoint import TorEndpoint
from crawler.tor.managed import ManagedTorProcess, free_port
from crawler.tor.service import check_socks_port, open_tor

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "correct horse battery staple"
PASSWORD_ENV = "DARKARCHIVE_TEST_TOR_CONTROL_PASSWORD"


@pytest.fixture
def offline_tor(tmp_path: Path) -> Iterator[tuple[ManagedTorProcess, TorEndpoint]]:
    """A managed tor with its network disabled: control port only, SOCKS port refuses."""
    tor = ManagedTorProcess(tmp_path / "tor", options={"DisableNetwork": "1"})
    try:
        endpoint = tor.start()
        yield tor, endpoint
    finally:
        tor.stop()


@pytest.fixture
def team_tor(tmp_path: Path) -> Iterator[TorEndpoint]:
    """A tor the team runs (external mode) that takes a control password and nothing else."""
    options = {"DisableNetwork": "1", "HashedControlPassword": hashed_password(PASSWORD)}
    with lone_tor(tmp_path / "team-tor", options, TeamTor) as tor:
        yield TorEndpoint(
            socks=f"127.0.0.1:{tor.socks_port}",
            control=control_address(tor),
            password=SecretRef(env=PASSWORD_ENV),
        )


def _external(endpoint: TorEndpoint, bootstrap_timeout: float = 1.0) -> TorConfig:
    return TorConfig(
        mode="external",
        external=ExternalTor(
            socks=endpoint.socks,
            control=endpoint.control,
            cookie_file=endpoint.cookie_file,
            password=endpoint.password,
        ),
        bootstrap_timeout=bootstrap_timeout,
    )


def test_managed_tor_starts_answers_and_stops_leaving_no_process(tmp_path: Path) -> None:
    tor = ManagedTorProcess(tmp_path / "tor", options={"DisableNetwork": "1"})
    try:
        endpoint = tor.start()
        pid = tor.pid
        assert pid is not None and pid_alive(pid)
        assert endpoint.socks == f"127.0.0.1:{tor.socks_port}"
        assert endpoint.control and endpoint.control.startswith("127.0.0.1:")
        assert endpoint.cookie_file == str(tmp_path / "tor" / "control_auth_cookie")
        with TorControl.connect(endpoint) as control:
            state = control.bootstrap()
        assert (state.progress, state.summary, state.done) == (0, "Starting", False)
    finally:
        tor.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    tor.stop()  # idempotent


def test_socks_flags_show_extended_errors_and_isolation(
    offline_tor: tuple[ManagedTorProcess, TorEndpoint],
) -> None:
    tor, endpoint = offline_tor
    with TorControl.connect(endpoint) as control:
        (line,) = control.socks_flags()
        assert control.version().startswith("0.4.")
        assert control.circuits() == [] and control.circuits_by_username() == {}
    assert line.split() == [f"127.0.0.1:{tor.socks_port}", "ExtendedErrors", "IsolateSOCKSAuth"]


def test_a_tor_without_network_opens_no_socks_port(
    offline_tor: tuple[ManagedTorProcess, TorEndpoint],
) -> None:
    _, endpoint = offline_tor
    with pytest.raises(TorUnavailable, match=f"Tor's SOCKS port {endpoint.socks} is not reach"):
        check_socks_port(endpoint.socks)


def test_open_tor_fails_closed_naming_the_progress_and_stops_its_tor(tmp_path: Path) -> None:
    pid_file = tmp_path / "tor.pid"
    config = TorConfig(
        managed=ManagedTor(
            data_dir=str(tmp_path / "tor"),
            options={"DisableNetwork": "1", "PidFile": str(pid_file)},
        ),
        bootstrap_timeout=2,
    )
    seen: list[Bootstrap] = []
    pids: list[int] = []

    def progress(state: Bootstrap) -> None:  # called while tor runs
        seen.append(state)
        pids.append(int(pid_file.read_text()))

    started = time.monotonic()
    with (
        pytest.raises(TorUnavailable, match=r"^Tor did not bootstrap within 2 s: 0% Starting$"),
        open_tor(config, progress),
    ):
        pytest.fail("open_tor yielded an endpoint for a tor that never bootstrapped")
    assert 2 <= time.monotonic() - started < 10
    assert [(s.progress, s.tag) for s in seen] == [(0, "starting")]
    (pid,) = pids
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_tor_that_dies_during_bootstrap_fails_closed(tmp_path: Path) -> None:
    with lone_tor(tmp_path / "tor", {"DisableNetwork": "1"}) as tor:
        endpoint = TorEndpoint(socks="127.0.0.1:1", control=control_address(tor))
        with TorControl.connect(endpoint) as control:
            assert tor.pid is not None
            os.kill(tor.pid, signal.SIGKILL)
            with pytest.raises(TorUnavailable, match="stopped answering"):
                control.wait_bootstrapped(timeout=10)


def test_a_bad_torrc_option_fails_with_tor_s_own_message(tmp_path: Path) -> None:
    config = TorConfig(
        managed=ManagedTor(
            data_dir=str(tmp_path / "tor"),
            options={"DisableNetwork": "1", "NoSuchTorOption": "1"},
        ),
        bootstrap_timeout=2,
    )
    with pytest.raises(TorUnavailable) as caught, open_tor(config):
        pytest.fail("open_tor yielded an endpoint for a tor that refused its torrc")
    message = str(caught.value)
    assert message.startswith("tor exited with status 1: ")
    assert "Unknown option 'NoSuchTorOption'" in message


def test_a_missing_tor_binary_is_named_with_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "bin" / "tor"
    config = TorConfig(
        managed=ManagedTor(binary=str(missing), data_dir=str(tmp_path / "tor")),
    )
    with pytest.raises(TorUnavailable) as caught, open_tor(config):
        pytest.fail("open_tor yielded an endpoint without a tor")
    assert str(caught.value) == (
        f"no {str(missing)!r} executable found: install Debian's tor (apt-get install tor)"
    )
    assert not (tmp_path / "tor").exists(), "nothing is prepared for a tor that cannot run"


def test_external_tor_with_the_right_password(
    team_tor: TorEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with TorControl.connect(team_tor) as control:
        assert control.bootstrap().progress == 0
        assert control.version().startswith("0.4.")
    # Past authentication, open_tor waits for bootstrap, which this offline tor never ends.
    with (
        pytest.raises(TorUnavailable, match=r"did not bootstrap within 1 s: 0% Starting"),
        open_tor(_external(team_tor)),
    ):
        pytest.fail("open_tor yielded an endpoint for a tor that never bootstrapped")


def test_external_tor_with_a_wrong_password_fails_without_showing_it(
    team_tor: TorEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "Tr0ub4dor&3-not-it"
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    with pytest.raises(TorUnavailable) as caught:
        TorControl.connect(team_tor)
    with pytest.raises(TorUnavailable) as through_open_tor, open_tor(_external(team_tor)):
        pytest.fail("open_tor yielded an endpoint with a wrong password")
    for error in (caught.value, through_open_tor.value):
        text = f"{error} {error!r} {error.__cause__} {error.__cause__!r}"
        assert f"Tor's control port {team_tor.control}: " in str(error)
        assert "Password did not match HashedControlPassword" in str(error)
        assert wrong not in text and PASSWORD not in text


def test_external_tor_without_the_password_variable_names_it(
    team_tor: TorEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(TorUnavailable, match=f"needs environment variable {PASSWORD_ENV}$"):
        TorControl.connect(team_tor)


def test_external_tor_with_a_dead_socks_port_is_refused() -> None:
    dead = f"127.0.0.1:{free_port()}"
    config = TorConfig(mode="external", external=ExternalTor(socks=dead, control=None))
    with (
        pytest.raises(TorUnavailable, match=f"^Tor's SOCKS port {dead} is not reachable: "),
        open_tor(config),
    ):
        pytest.fail("open_tor yielded a SOCKS port nothing listens on")


def test_external_tor_with_a_dead_control_port_is_refused() -> None:
    dead = f"127.0.0.1:{free_port()}"
    config = TorConfig(mode="external", external=ExternalTor(control=dead))
    with (
        pytest.raises(TorUnavailable, match=f"^Tor's control port {dead} refused"),
        open_tor(config),
    ):
        pytest.fail("open_tor yielded an endpoint without a control port")


def test_a_second_new_identity_waits_out_tor_s_rate_limit(
    offline_tor: tuple[ManagedTorProcess, TorEndpoint],
) -> None:
    """Each NEWNYM on its own connection, as the crawl sends them: the wait still holds."""
    tor, endpoint = offline_tor
    with TorControl.connect(endpoint) as control:
        assert control.new_identity() == 0.0
    started = time.monotonic()
    with TorControl.connect(endpoint) as control:
        waited = control.new_identity()
    elapsed = time.monotonic() - started
    assert NEWNYM_INTERVAL - 1 < waited <= NEWNYM_INTERVAL
    assert elapsed >= waited
    log = tor.log_path.read_text(encoding="utf-8")
    assert "Rate limiting NEWNYM" not in log, "tor had to delay it: we did not wait enough"


@pytest.mark.parametrize(
    ("key", "address"),
    [
        ("socks", "10.0.0.5:9050"),
        ("socks", "tor.example.org:9050"),
        ("socks", "0.0.0.0:9050"),
        ("socks", "127.0.0.1"),
        ("control", "192.168.1.20:9051"),
    ],
)
def test_a_non_loopback_tor_address_is_refused_naming_the_key(
    tmp_path: Path, key: str, address: str
) -> None:
    path = tmp_path / "tor.yaml"
    path.write_text(f"mode: external\nexternal:\n  {key}: '{address}'\n", encoding="utf-8")
    with pytest.raises(TorConfigError) as caught:
        load_tor_config(path)
    assert str(caught.value).startswith(f"{path}: key external.{key}: ")
    assert f"{address!r} is not a loopback host:port" in str(caught.value)


@pytest.mark.parametrize("address", ["127.0.0.1:9050", "127.0.0.2:19050", "localhost:9050"])
def test_loopback_tor_addresses_are_accepted(tmp_path: Path, address: str) -> None:
    path = tmp_path / "tor.yaml"
    path.write_text(f"mode: external\nexternal: {{socks: '{address}'}}\n", encoding="utf-8")
    assert load_tor_config(path).external.socks == address


def test_a_missing_explicit_tor_config_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "tor.yaml"
    with pytest.raises(TorConfigError, match="no such Tor configuration file"):
        load_tor_config(missing)
    monkeypatch.setenv("DARKARCHIVE_TOR_CONFIG", str(missing))
    with pytest.raises(TorConfigError, match=f"^{missing}: no such Tor configuration file$"):
        load_tor_config()


def test_tor_config_names_the_file_and_key_and_never_echoes_a_password(tmp_path: Path) -> None:
    path = tmp_path / "tor.yaml"
    path.write_text(
        "mode: external\nbootstrap_timeout: 0\nexternal: {password: hunter2-secret}\n",
        encoding="utf-8",
    )
    with pytest.raises(TorConfigError) as caught:
        load_tor_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "key bootstrap_timeout: Input should be greater than 0" in message
    assert "key external.password: " in message
    assert "hunter2-secret" not in message
    path.write_text("mode: [managed\n", encoding="utf-8")
    with pytest.raises(TorConfigError, match="not valid YAML"):
        load_tor_config(path)
