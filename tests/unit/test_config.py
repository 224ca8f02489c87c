"""Flags and environment variables of SPEC section 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import certifi
import pytest

from netatmo_exporter.entrypoints.config import (
    OPTIONS,
    Config,
    ConfigError,
    load_config,
    parse_addr,
    parse_duration,
)

SECRET = "s3cr3t-value-never-shown"
REPO = Path(__file__).resolve().parents[2]


CA_FILE = certifi.where()
"""A file of CAs OpenSSL reads (certifi's bundle, or Debian's, which certifi names)."""

def required(tmp_path: Path) -> dict[str, str]:
    return {
        "NETATMO_CLIENT_ID": "cid",
        "NETATMO_CLIENT_SECRET": SECRET,
        "NETATMO_EXPORTER_TOKEN_FILE": str(tmp_path / "token.json"),
    }


def load(tmp_path: Path, argv: list[str] = (), **env: str) -> Config:  # type: ignore[assignment]
    return load_config(list(argv), {**required(tmp_path), **env})


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)

    assert (config.host, config.port) == ("", 9210)
    assert config.external_url == "http://127.0.0.1:9210"
    assert config.refresh_interval == 480.0
    assert config.refresh_mode == "aligned"
    assert config.age_stale == 3600.0
    assert config.log_level == "info"
    assert config.log_format == "logfmt"
    assert config.debug_handlers is False
    assert config.api_url == "https://api.netatmo.com"
    assert config.scopes == ("read_station", "read_homecoach")
    assert config.favorites is False
    assert config.control_socket is None


FLAG_CASES = [
    (["-a", "127.0.0.1:9999"], "NETATMO_EXPORTER_ADDR", "127.0.0.1:9999",
     lambda c: (c.host, c.port), ("127.0.0.1", 9999)),
    (["--addr", "[::1]:9998"], "NETATMO_EXPORTER_ADDR", "[::1]:9998",
     lambda c: (c.host, c.port), ("::1", 9998)),
    (["--external-url", "http://nas.lan:9210/"], "NETATMO_EXPORTER_EXTERNAL_URL",
     "http://nas.lan:9210/", lambda c: c.external_url, "http://nas.lan:9210"),
    (["-i", "other-id"], "NETATMO_CLIENT_ID", "other-id", lambda c: c.client_id, "other-id"),
    (["--client-id", "other-id"], "NETATMO_CLIENT_ID", "other-id",
     lambda c: c.client_id, "other-id"),
    (["-s", "other-secret"], "NETATMO_CLIENT_SECRET", "other-secret",
     lambda c: c.client_secret, "other-secret"),
    (["--client-secret", "other-secret"], "NETATMO_CLIENT_SECRET", "other-secret",
     lambda c: c.client_secret, "other-secret"),
    (["--refresh-interval", "90s"], "NETATMO_REFRESH_INTERVAL", "90s",
     lambda c: c.refresh_interval, 90.0),
    (["--refresh-mode", "fixed"], "NETATMO_REFRESH_MODE", "fixed",
     lambda c: c.refresh_mode, "fixed"),
    (["--refresh-mode", "Aligned"], "NETATMO_REFRESH_MODE", "Aligned",
     lambda c: c.refresh_mode, "aligned"),
    (["--age-stale", "2h"], "NETATMO_AGE_STALE", "2h", lambda c: c.age_stale, 7200.0),
    (["--log-level", "debug"], "NETATMO_LOG_LEVEL", "debug", lambda c: c.log_level, "debug"),
    (["--log-level", "warn"], "NETATMO_LOG_LEVEL", "warn", lambda c: c.log_level, "warn"),
    (["--log-level", "error"], "NETATMO_LOG_LEVEL", "error", lambda c: c.log_level, "error"),
    (["--debug-handlers"], "DEBUG_HANDLERS", "1", lambda c: c.debug_handlers, True),
    (["--api-url", "http://127.0.0.1:1/"], "NETATMO_API_URL", "http://127.0.0.1:1/",
     lambda c: c.api_url, "http://127.0.0.1:1"),
    (["--scope", "read_station"], "NETATMO_SCOPE", "read_station",
     lambda c: c.scopes, ("read_station",)),
    (["--log-format", "json"], "NETATMO_LOG_FORMAT", "json", lambda c: c.log_format, "json"),
    (["--favorites"], "NETATMO_FAVORITES", "true", lambda c: c.favorites, True),
    (["--control-socket", "/run/x.sock"], "NETATMO_EXPORTER_CONTROL_SOCKET", "/run/x.sock",
     lambda c: c.control_socket, "/run/x.sock"),
    (["--web.allowed-hosts", "nas.lan,box"], "NETATMO_EXPORTER_ALLOWED_HOSTS", "nas.lan,box",
     lambda c: c.allowed_hosts, ("nas.lan", "box")),
    (["--web.config.file", "/dev/null"], "NETATMO_EXPORTER_WEB_CONFIG", "/dev/null",
     lambda c: c.web_config.path, "/dev/null"),
]


@pytest.mark.parametrize(("argv", "env", "value", "get", "expected"), FLAG_CASES)
def test_every_flag_and_its_environment_variable(
    tmp_path: Path, argv: list[str], env: str, value: str, get: object, expected: object
) -> None:
    assert get(load(tmp_path, argv)) == expected  # type: ignore[operator]
    assert get(load(tmp_path, [], **{env: value})) == expected  # type: ignore[operator]


def test_token_file_flag_and_env(tmp_path: Path) -> None:
    env = {k: v for k, v in required(tmp_path).items() if k != "NETATMO_EXPORTER_TOKEN_FILE"}
    by_flag = load_config(["--token-file", str(tmp_path / "a.json")], env)
    by_env = load_config([], {**env, "NETATMO_EXPORTER_TOKEN_FILE": str(tmp_path / "b.json")})

    assert by_flag.token_file == str(tmp_path / "a.json")
    assert by_env.token_file == str(tmp_path / "b.json")


HISTORY_URL = "http://127.0.0.1:9090/api/v1/write"
HISTORY_CASES = [
    (["--history.remote-write-url", HISTORY_URL], "NETATMO_HISTORY_REMOTE_WRITE_URL",
     HISTORY_URL, lambda h: h.url, HISTORY_URL),
    (["--history.label", "job=netatmo", "--history.label", "instance=nas:9210"],
     "NETATMO_HISTORY_LABELS", "job=netatmo,instance=nas:9210", lambda h: h.labels,
     (("job", "netatmo"), ("instance", "nas:9210"))),
    (["--history.lookback", "24h"], "NETATMO_HISTORY_LOOKBACK", "24h",
     lambda h: h.lookback, 86400.0),
    (["--history.interval", "10m"], "NETATMO_HISTORY_INTERVAL", "10m",
     lambda h: h.interval, 600.0),
    (["--history.remote-write-username", "u", "--history.remote-write-password-file",
      "/dev/null"], "NETATMO_HISTORY_REMOTE_WRITE_USERNAME", "u", lambda h: h.username, "u"),
    (["--history.remote-write-username", "u", "--history.remote-write-password-file",
      "/dev/null"], "NETATMO_HISTORY_REMOTE_WRITE_PASSWORD_FILE", "/dev/null",
     lambda h: h.password_file, "/dev/null"),
    (["--history.remote-write-bearer-token-file", "/dev/null"],
     "NETATMO_HISTORY_REMOTE_WRITE_BEARER_TOKEN_FILE", "/dev/null",
     lambda h: h.bearer_token_file, "/dev/null"),
    (["--history.remote-write-ca-file", CA_FILE], "NETATMO_HISTORY_REMOTE_WRITE_CA_FILE",
     CA_FILE, lambda h: h.ca_file, CA_FILE),
]
_PAIRED = {"NETATMO_HISTORY_REMOTE_WRITE_USERNAME": "NETATMO_HISTORY_REMOTE_WRITE_PASSWORD_FILE",
           "NETATMO_HISTORY_REMOTE_WRITE_PASSWORD_FILE": "NETATMO_HISTORY_REMOTE_WRITE_USERNAME"}
_PAIR_VALUES = {"NETATMO_HISTORY_REMOTE_WRITE_USERNAME": "u",
                "NETATMO_HISTORY_REMOTE_WRITE_PASSWORD_FILE": "/dev/null"}


@pytest.mark.parametrize(("argv", "env", "value", "get", "expected"), HISTORY_CASES)
def test_every_history_flag_and_its_environment_variable(
    tmp_path: Path, argv: list[str], env: str, value: str, get: object, expected: object
) -> None:
    url = "https://127.0.0.1:9090/api/v1/write" if "CA_FILE" in env else HISTORY_URL
    by_flag = load(tmp_path, ["--history.remote-write-url", url, *argv])
    extra = {_PAIRED[env]: _PAIR_VALUES[_PAIRED[env]]} if env in _PAIRED else {}
    by_env = load(tmp_path, [], **{"NETATMO_HISTORY_REMOTE_WRITE_URL": url, env: value, **extra})
    assert get(by_flag.history) == expected  # type: ignore[operator]
    assert get(by_env.history) == expected  # type: ignore[operator]


def test_history_is_off_without_a_receiver(tmp_path: Path) -> None:
    assert load(tmp_path, ["--history.label", "job=netatmo"]).history is None


@pytest.mark.parametrize(("argv", "names"), [
    (["--history.remote-write-url", "ftp://x/"], "--history.remote-write-url"),
    (["--history.label", "job"], "NETATMO_HISTORY_LABELS"),
    (["--history.label", "module=x"], "NETATMO_HISTORY_LABELS"),
    (["--history.label", "__name__=x"], "NETATMO_HISTORY_LABELS"),
    (["--history.interval", "often"], "NETATMO_HISTORY_INTERVAL"),
    (["--history.remote-write-username", "u"], "NETATMO_HISTORY_REMOTE_WRITE_PASSWORD_FILE"),
    (["--history.remote-write-bearer-token-file", "/nonexistent/token"],
     "NETATMO_HISTORY_REMOTE_WRITE_BEARER_TOKEN_FILE"),
    (["--history.remote-write-ca-file", "/dev/null"], "NETATMO_HISTORY_REMOTE_WRITE_CA_FILE"),
])
def test_bad_history_settings_name_the_flag(tmp_path: Path, argv: list[str], names: str) -> None:
    if argv[0] != "--history.remote-write-url":
        argv = ["--history.remote-write-url", HISTORY_URL, *argv]
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        load(tmp_path, argv)


def test_every_option_is_covered_here() -> None:
    covered = ({env for _, env, *_ in FLAG_CASES} | {env for _, env, *_ in HISTORY_CASES}
               | {"NETATMO_EXPORTER_TOKEN_FILE"})
    assert covered == {option.env for option in OPTIONS}


def test_flags_win_over_environment(tmp_path: Path) -> None:
    config = load(tmp_path, ["--refresh-interval", "2m", "-i", "flag-id", "--log-format", "json"],
                  NETATMO_REFRESH_INTERVAL="5m", NETATMO_CLIENT_ID="env-id",
                  NETATMO_LOG_FORMAT="logfmt", NETATMO_LOG_LEVEL="debug")

    assert config.refresh_interval == 120.0
    assert config.client_id == "flag-id"
    assert config.log_format == "json"
    assert config.log_level == "debug"


def test_empty_debug_handlers_variable_is_off(tmp_path: Path) -> None:
    assert load(tmp_path, DEBUG_HANDLERS="").debug_handlers is False


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("8m", 480.0), ("1h30m", 5400.0), ("1h0m0s", 3600.0), ("1.5h", 5400.0),
    ("500ms", 0.5), ("2h45m30.5s", 9930.5), ("0", 0.0), ("1m0s", 60.0),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "m", "1x", "1h 30m", "1hh", "abc"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_go_formatted_interval_is_accepted(tmp_path: Path) -> None:
    config = load(tmp_path, ["--refresh-interval", "8m0s", "--age-stale", "1h0m0s"])

    assert (config.refresh_interval, config.age_stale) == (480.0, 3600.0)


@pytest.mark.parametrize(("argv", "env", "flag", "var"), [
    (["--refresh-interval", "soon"], {}, "--refresh-interval", "NETATMO_REFRESH_INTERVAL"),
    ([], {"NETATMO_REFRESH_INTERVAL": "10"}, "--refresh-interval", "NETATMO_REFRESH_INTERVAL"),
    (["--refresh-interval", "0s"], {}, "--refresh-interval", "NETATMO_REFRESH_INTERVAL"),
    (["--age-stale", "1 hour"], {}, "--age-stale", "NETATMO_AGE_STALE"),
    (["--refresh-interval", "10m", "--age-stale", "5m"], {}, "--age-stale",
     "NETATMO_AGE_STALE"),
    (["--log-level", "loud"], {}, "--log-level", "NETATMO_LOG_LEVEL"),
    ([], {"NETATMO_REFRESH_MODE": "sometimes"}, "--refresh-mode", "NETATMO_REFRESH_MODE"),
    (["--log-format", "xml"], {}, "--log-format", "NETATMO_LOG_FORMAT"),
    (["--scope", "read_camera"], {}, "--scope", "NETATMO_SCOPE"),
    (["--addr", "9210"], {}, "--addr", "NETATMO_EXPORTER_ADDR"),
    (["--addr", "host:99999"], {}, "--addr", "NETATMO_EXPORTER_ADDR"),
    (["--api-url", "ftp://x"], {}, "--api-url", "NETATMO_API_URL"),
    (["--external-url", "nas.lan"], {}, "--external-url", "NETATMO_EXPORTER_EXTERNAL_URL"),
    ([], {"NETATMO_FAVORITES": "maybe"}, "--favorites", "NETATMO_FAVORITES"),
])
def test_validation_errors_name_flag_and_variable(
    tmp_path: Path, argv: list[str], env: dict[str, str], flag: str, var: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, argv, **env)

    assert flag in str(caught.value)
    assert var in str(caught.value)
    assert "\n" not in str(caught.value)


def test_stale_shorter_than_refresh_is_rejected_equal_is_fine(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shorter than the refresh interval"):
        load(tmp_path, ["--refresh-interval", "2h", "--age-stale", "1h"])
    assert load(tmp_path, ["--refresh-interval", "1h", "--age-stale", "60m"]).age_stale == 3600


@pytest.mark.parametrize(("missing", "flag"), [
    ("NETATMO_CLIENT_ID", "--client-id"),
    ("NETATMO_CLIENT_SECRET", "--client-secret"),
    ("NETATMO_EXPORTER_TOKEN_FILE", "--token-file"),
])
def test_required_settings(tmp_path: Path, missing: str, flag: str) -> None:
    env = {k: v for k, v in required(tmp_path).items() if k != missing}

    with pytest.raises(ConfigError) as caught:
        load_config([], env)

    assert flag in str(caught.value) and missing in str(caught.value)
    assert SECRET not in str(caught.value)


def test_missing_token_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as caught:
        load(tmp_path, ["--token-file", str(tmp_path / "nowhere" / "token.json")])

    assert "--token-file" in str(caught.value)
    assert "NETATMO_EXPORTER_TOKEN_FILE" in str(caught.value)


def test_unwritable_token_directory(tmp_path: Path) -> None:
    # Root passes every permission check; a file where the directory should be cannot be
    # written by anybody.
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, ["--token-file", str(blocker / "token.json")])

    assert "NETATMO_EXPORTER_TOKEN_FILE" in str(caught.value)


def test_token_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load(tmp_path, ["--token-file", str(tmp_path)])


@pytest.mark.parametrize(("addr", "expected"), [
    (":9210", ("", 9210)),
    ("0.0.0.0:1234", ("0.0.0.0", 1234)),
    ("127.0.0.1:80", ("127.0.0.1", 80)),
    ("[::1]:9210", ("::1", 9210)),
    ("[::]:9210", ("::", 9210)),
    ("[fe80::1%eth0]:9210", ("fe80::1%eth0", 9210)),
    ("localhost:0", ("localhost", 0)),
])
def test_listen_addresses(addr: str, expected: tuple[str, int]) -> None:
    assert parse_addr(addr) == expected


@pytest.mark.parametrize("addr", ["::1:9210", "[::1]", "127.0.0.1", "[::1]:x", ""])
def test_bad_listen_addresses(addr: str) -> None:
    with pytest.raises(ConfigError, match="--addr"):
        parse_addr(addr)


@pytest.mark.parametrize(("addr", "url"), [
    (":9300", "http://127.0.0.1:9300"),
    ("0.0.0.0:9300", "http://127.0.0.1:9300"),
    ("[::]:9300", "http://127.0.0.1:9300"),
    ("192.168.1.5:9300", "http://192.168.1.5:9300"),
    ("[::1]:9300", "http://[::1]:9300"),
    ("nas.lan:9300", "http://nas.lan:9300"),
])
def test_default_external_url(tmp_path: Path, addr: str, url: str) -> None:
    config = load(tmp_path, ["--addr", addr])

    assert config.external_url == url


def test_control_socket_defaults_to_runtime_directory(tmp_path: Path) -> None:
    config = load(tmp_path, RUNTIME_DIRECTORY="/run/netatmo-exporter")

    assert config.control_socket == "/run/netatmo-exporter/control.sock"


def test_repr_hides_the_secret(tmp_path: Path) -> None:
    assert SECRET not in repr(load(tmp_path))


def test_help_lists_every_flag_with_defaults_but_never_the_secret(tmp_path: Path) -> None:
    env = {**os.environ, **required(tmp_path), "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "netatmo_exporter", "--help", "--client-secret", SECRET],
        capture_output=True, text=True, env=env, timeout=30, check=False)

    assert result.returncode == 0
    for option in OPTIONS:
        for flag in option.flags:
            assert flag in result.stdout
        assert option.env in result.stdout
    for default in (":9210", "8m", "1h", "info", "logfmt", "https://api.netatmo.com",
                    "read_station read_homecoach"):
        assert f"default: {default}" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_token_file_with_nul_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--token-file \(NETATMO_EXPORTER_TOKEN_FILE\).*NUL"):
        load(tmp_path, ["--token-file", str(tmp_path / "a\x00b")])


@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("SSL_CERT_FILE", "missing.pem", "SSL_CERT_FILE={}: No such file or directory"),
    ("SSL_CERT_FILE", "garbage.pem", "SSL_CERT_FILE={}: holds no certificate OpenSSL can read"),
    ("SSL_CERT_DIR", "missing", "SSL_CERT_DIR={}: not a folder"),
])
def test_a_trust_store_openssl_cannot_use_is_a_configuration_error(
        tmp_path: Path, variable: str, value: str, problem: str) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    path = str(tmp_path / value)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **{variable: path})
    assert str(caught.value).startswith("the certificates to trust for https://: "
                                        + problem.format(path))


def test_a_receiver_ca_file_openssl_cannot_read_names_its_option(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, ["--history.remote-write-url", "https://mimir.example.org/api/v1/push",
                        "--history.remote-write-ca-file", str(tmp_path / "ca.pem")])
    assert str(caught.value).startswith(
        "--history.remote-write-ca-file (NETATMO_HISTORY_REMOTE_WRITE_CA_FILE): "
        f"{tmp_path / 'ca.pem'}: holds no certificate OpenSSL can read")
