"""build_app in-process against the simulated cloud: transient faults never touch the
token file, IPv6 listening, and the check-config and serve exit codes."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.entrypoints.bootstrap import Application, build_app, listening_on
from netatmo_exporter.entrypoints.cli import main
from netatmo_exporter.entrypoints.config import load_config
from netatmo_exporter.simulator import FakeNetatmoCloud, Fault
from tests.conftest import exporter_args
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, http_get, seed_token

TRANSIENT_FAULTS = [Fault.http_500(), Fault.html_502(), Fault.truncated_body(),
                    Fault.connection_reset(), Fault.malformed_json()]


@pytest.fixture
def make_app(cloud: FakeNetatmoCloud, token_path: Path) -> Iterator[
        tuple[Application, io.StringIO]]:
    stream = io.StringIO()
    client = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock(),
                           sleep=lambda _: None)
    config = load_config(exporter_args(cloud, token_path, "--addr", "127.0.0.1:0"), {})
    app = build_app(config, client=client, log_stream=stream)
    yield app, stream
    app.server.shutdown()
    client.close()


def fingerprint(path: Path) -> tuple[bytes, int, int]:
    info = path.stat()
    return path.read_bytes(), info.st_mtime_ns, info.st_ino


def up(app: Application) -> float | None:
    return app.registry.get_sample_value("netatmo_up")


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS, ids=lambda f: f.kind.value)
def test_data_faults_never_touch_the_token_file(
    cloud: FakeNetatmoCloud, token_path: Path, make_app: tuple[Application, io.StringIO],
    fault: Fault
) -> None:
    app, log = make_app
    seed_token(cloud, token_path)
    before = fingerprint(token_path)
    app.tokens.load()
    app.refresher.poll_once()
    assert up(app) == 1.0

    cloud.inject("getstationsdata", fault, times=None)
    app.refresher.poll_once()
    assert up(app) == 0.0
    assert app.tokens.authorized
    cloud.clear_faults()
    app.refresher.poll_once()

    assert up(app) == 1.0
    assert fingerprint(token_path) == before
    assert cloud.count("token") == 0
    assert "event=refresh_failed" in log.getvalue()


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS, ids=lambda f: f.kind.value)
def test_token_endpoint_faults_keep_the_refresh_token(
    cloud: FakeNetatmoCloud, token_path: Path, make_app: tuple[Application, io.StringIO],
    fault: Fault
) -> None:
    app, _ = make_app
    seed_token(cloud, token_path, refresh_only=True)
    before = fingerprint(token_path)
    app.tokens.load()

    cloud.inject("token", fault, times=None)
    app.refresher.poll_once()
    assert up(app) == 0.0
    assert fingerprint(token_path) == before
    assert json.loads(before[0])["refresh_token"] in cloud.valid_refresh_tokens()
    cloud.clear_faults()
    app.refresher.poll_once()

    assert up(app) == 1.0
    assert cloud.count("invalid_grant") == 0
    assert json.loads(token_path.read_text())["refresh_token"] in cloud.valid_refresh_tokens()


def test_invalid_grant_is_shown_and_needs_authorization(
    cloud: FakeNetatmoCloud, token_path: Path, make_app: tuple[Application, io.StringIO]
) -> None:
    app, log = make_app
    seed_token(cloud, token_path, refresh_only=True)
    cloud.revoke_all()
    app.tokens.load()

    app.refresher.poll_once()

    assert up(app) == 0.0
    assert app.registry.get_sample_value(
        "netatmo_exporter_authorization_state", {"state": "invalid_grant"}) == 1.0
    assert not app.tokens.authorized
    assert "reason=invalid_grant" in log.getvalue()


def test_listens_on_ipv6_loopback(cloud: FakeNetatmoCloud, token_path: Path) -> None:
    config = load_config(exporter_args(cloud, token_path, "--addr", "[::1]:0"), {})
    app = build_app(config, log_stream=io.StringIO())
    app.start()
    try:
        port = app.server.server_address[1]
        assert app.url == f"http://[::1]:{port}"
        assert http_get(f"http://[::1]:{port}/-/healthy")[0] == 200
        assert http_get(f"http://[::1]:{port}/-/ready")[0] == 503
    finally:
        assert app.stop()


def test_check_config_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = ["--token-file", str(tmp_path / "token.json")]
    complete = {"NETATMO_CLIENT_ID": CLIENT_ID, "NETATMO_CLIENT_SECRET": CLIENT_SECRET}

    assert main(["check-config", *token], {}) == 1
    assert "NETATMO_CLIENT_ID and NETATMO_CLIENT_SECRET" in capsys.readouterr().err
    assert main(["check-config", *token], complete) == 0
    assert "configuration complete" in capsys.readouterr().out
    assert main(["check-config", *token, "--age-stale", "1m"], complete) == 78
    err = capsys.readouterr().err
    assert "--age-stale" in err and "NETATMO_AGE_STALE" in err
    assert CLIENT_SECRET not in err


def test_check_config_as_the_unit_condition_skips_only_missing_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ExecCondition= skips the unit (exit 1) only when not configured yet; a wrong setting
    passes the condition, so that the exporter itself fails the unit."""
    token = ["--token-file", str(tmp_path / "token.json")]
    complete = {"NETATMO_CLIENT_ID": CLIENT_ID, "NETATMO_CLIENT_SECRET": CLIENT_SECRET}
    condition = ["check-config", "--only-credentials", "--settings-file",
                 "/etc/netatmo-exporter/holiday.env", "--unit", "netatmo-exporter@holiday"]

    assert main([*condition, *token], {"NETATMO_CLIENT_ID": CLIENT_ID}) == 1
    err = capsys.readouterr().err
    assert "not configured yet: set NETATMO_CLIENT_SECRET in " \
           "/etc/netatmo-exporter/holiday.env" in err
    assert "systemctl restart netatmo-exporter@holiday" in err
    assert main([*condition, *token], {**complete, "NETATMO_REFRESH_INTERVAL": "8minutes"}) == 0
    assert main([*condition, *token, "--no-such-flag"], complete) == 0
    assert main([*condition, *token], complete) == 0


def test_serve_with_bad_configuration_exits_before_listening(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"NETATMO_CLIENT_ID": CLIENT_ID, "NETATMO_CLIENT_SECRET": CLIENT_SECRET,
           "NETATMO_EXPORTER_TOKEN_FILE": str(tmp_path / "token.json"),
           "NETATMO_REFRESH_INTERVAL": "often"}

    assert main([], env) == 78
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--refresh-interval" in err and "NETATMO_REFRESH_INTERVAL" in err


@pytest.mark.parametrize(("family", "host", "v6only", "address", "interfaces"), [
    (socket.AF_INET6, "::", 0, "http://[::]:{port}", "every IPv4 and IPv6 address"),
    (socket.AF_INET6, "::", 1, "http://[::]:{port}", "every IPv6 address"),
    (socket.AF_INET, "0.0.0.0", None, "http://0.0.0.0:{port}", "every IPv4 address"),
    (socket.AF_INET, "127.0.0.1", None, "http://127.0.0.1:{port}", "this address only"),
])
def test_the_log_names_where_the_socket_is_bound(
    family: socket.AddressFamily, host: str, v6only: int | None, address: str,
    interfaces: str
) -> None:
    # Bound, never listening: nothing outside the loopback can connect.
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
        sock.bind((host, 0))
        port = sock.getsockname()[1]
        assert listening_on(sock) == (address.format(port=port), interfaces)


def test_the_listening_line(cloud: FakeNetatmoCloud, token_path: Path) -> None:
    config = load_config(exporter_args(cloud, token_path, "--addr", "[::1]:0"), {})
    log = io.StringIO()
    app = build_app(config, log_stream=log)
    app.start()
    try:
        port = app.server.server_address[1]
        assert f'event=listening address=http://[::1]:{port} interfaces="this address only"' \
            in log.getvalue()
    finally:
        assert app.stop()
