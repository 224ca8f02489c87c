"""Flags and environment variables, Go exporter compatible: flags win over the environment."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from netatmo_exporter import __version__
from netatmo_exporter.adapters.system.file_owner import foreign_path
from netatmo_exporter.adapters.system.token_file import renewal_lock_path
from netatmo_exporter.adapters.system.trust_store import UnusableTrustStore, trust_context
from netatmo_exporter.adapters.web.http_policy import http_url
from netatmo_exporter.domain.authorization.scopes import DEFAULT_SCOPES, KNOWN_SCOPES
from netatmo_exporter.domain.durations import parse_duration as parse_duration
from netatmo_exporter.domain.weather.schedule import REFRESH_MODES, RefreshMode

if TYPE_CHECKING:
    from netatmo_exporter.adapters.web.config_file import WebConfig

DEFAULT_PORT = 9210
EXIT_BAD_SETTING = 78
"""EX_CONFIG of sysexits.h (systemd shows it as "78/CONFIG"): a setting is wrong. The unit
lists it in RestartPreventExitStatus=, so a wrong setting fails the unit at once instead of
being retried. Every command exits with it on a `ConfigError`."""
DEFAULT_SCOPE = " ".join(DEFAULT_SCOPES)
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\.?")

class ConfigError(Exception):
    """A setting is wrong; the message names the flag and the environment variable."""


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    external_url: str
    token_file: str
    client_id: str
    client_secret: str
    refresh_interval: float
    refresh_mode: RefreshMode
    age_stale: float
    log_level: str
    log_format: str
    debug_handlers: bool
    api_url: str
    scopes: tuple[str, ...]
    favorites: bool
    control_socket: str | None
    external_url_configured: bool = True
    allowed_hosts: tuple[str, ...] = ()
    web_config: WebConfig | None = None
    history: HistorySettings | None = None
    """The history follower's settings (SPEC 13); None when it is off."""

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)

    def __repr__(self) -> str:
        return f"Config(host={self.host!r}, port={self.port}, client_id={self.client_id!r}, ...)"


@dataclass(frozen=True)
class HistorySettings:
    """Remote write of Netatmo's stored readings (SPEC 13). Credentials stay in their files
    (read by the writer, as Prometheus' own `remote_write` reads them), never here."""

    url: str
    labels: tuple[tuple[str, str], ...] = ()
    lookback: float = 3 * 3600.0
    interval: float = 30 * 60.0
    username: str = ""
    password_file: str = ""
    bearer_token_file: str = ""
    ca_file: str = ""


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    env: str
    dest: str
    default: str
    help: str
    secret: bool = False
    switch: bool = False
    repeat: bool = False
    """A repeatable flag; its environment variable is comma-separated."""

    @property
    def names(self) -> str:
        return f"{self.flags[-1]} ({self.env})"


OPTIONS = (
    Option(("-a", "--addr"), "NETATMO_EXPORTER_ADDR", "addr", f":{DEFAULT_PORT}",
           "listen address host:port; empty host = all interfaces; [::1]:9210 for IPv6"),
    Option(("--external-url",), "NETATMO_EXPORTER_EXTERNAL_URL", "external_url", "",
           "URL your browser reaches the exporter at; the OAuth redirect URI is this plus "
           "/auth/callback (default: the address your browser used to open the status "
           "page)"),
    Option(("--token-file",), "NETATMO_EXPORTER_TOKEN_FILE", "token_file", "",
           "token file path (required)"),
    Option(("-i", "--client-id"), "NETATMO_CLIENT_ID", "client_id", "",
           "client id of your Netatmo app (required)"),
    Option(("-s", "--client-secret"), "NETATMO_CLIENT_SECRET", "client_secret", "",
           "client secret of your Netatmo app (required; never shown)", secret=True),
    Option(("--refresh-interval",), "NETATMO_REFRESH_INTERVAL", "refresh_interval", "8m",
           "fixed mode: how often data is fetched from Netatmo; aligned mode (the "
           "default): the fallback until a station's upload rhythm is learned and while its "
           "uploads stop (Go duration)"),
    Option(("--refresh-mode",), "NETATMO_REFRESH_MODE", "refresh_mode", "aligned",
           "aligned: call just after each station's upload should be visible, learning its "
           "rhythm (--refresh-interval until it is known, or when uploads stop); fixed: "
           "every --refresh-interval"),
    Option(("--age-stale",), "NETATMO_AGE_STALE", "age_stale", "1h",
           "modules with older measurements export no sensor readings; >= refresh interval"),
    Option(("--log-level",), "NETATMO_LOG_LEVEL", "log_level", "info",
           "debug, info, warn or error"),
    Option(("--debug-handlers",), "DEBUG_HANDLERS", "debug_handlers", "",
           "enable /debug/data and /debug/token (env: any non-empty value)", switch=True),
    Option(("--api-url",), "NETATMO_API_URL", "api_url", "https://api.netatmo.com",
           "base URL of the Netatmo API"),
    Option(("--scope",), "NETATMO_SCOPE", "scope", DEFAULT_SCOPE,
           "scopes asked for at authorization; endpoints without a granted scope are skipped"),
    Option(("--log-format",), "NETATMO_LOG_FORMAT", "log_format", "logfmt", "logfmt or json"),
    Option(("--favorites",), "NETATMO_FAVORITES", "favorites", "",
           "also export your favourite (starred) stations (env: true/1/yes)", switch=True),
    Option(("--control-socket",), "NETATMO_EXPORTER_CONTROL_SOCKET", "control_socket", "",
           "unix socket where flush and backfill reach the running exporter (default: "
           "$RUNTIME_DIRECTORY/control.sock under systemd, else none; backfill also tries "
           "/run/netatmo-exporter/control.sock)"),
    Option(("--web.allowed-hosts",), "NETATMO_EXPORTER_ALLOWED_HOSTS", "allowed_hosts", "",
           "host names the pages answer to besides IP addresses, localhost, this machine's "
           "name (alone, .local and under resolv.conf's search domains) and the external "
           "URL's host; comma-separated (DNS-rebinding defence)"),
    Option(("--web.config.file",), "NETATMO_EXPORTER_WEB_CONFIG", "web_config_file", "",
           "Prometheus exporter-toolkit web configuration file (basic_auth_users)"),
    Option(("--history.remote-write-url",), "NETATMO_HISTORY_REMOTE_WRITE_URL",
           "history_url", "",
           "write every reading Netatmo stored, at its own time, to this Prometheus "
           "remote-write receiver (http://prometheus:9090/api/v1/write, VictoriaMetrics' "
           "http://HOST:8428/api/v1/write); outages fill themselves (docs/history.md)"),
    Option(("--history.label",), "NETATMO_HISTORY_LABELS", "history_labels", "",
           "NAME=VALUE added to every written series, repeatable (env: comma-separated): "
           "the job and instance Prometheus gives the live series", repeat=True),
    Option(("--history.lookback",), "NETATMO_HISTORY_LOOKBACK", "history_lookback", "3h",
           "where the history starts when there is no checkpoint yet (Go duration)"),
    Option(("--history.interval",), "NETATMO_HISTORY_INTERVAL", "history_interval", "30m",
           "how often new stored readings are fetched and written at most (Go duration)"),
    Option(("--history.remote-write-username",), "NETATMO_HISTORY_REMOTE_WRITE_USERNAME",
           "history_username", "", "basic auth user name for the receiver"),
    Option(("--history.remote-write-password-file",),
           "NETATMO_HISTORY_REMOTE_WRITE_PASSWORD_FILE", "history_password_file", "",
           "file holding the receiver's basic auth password"),
    Option(("--history.remote-write-bearer-token-file",),
           "NETATMO_HISTORY_REMOTE_WRITE_BEARER_TOKEN_FILE", "history_bearer_token_file", "",
           "file holding a bearer token for the receiver (instead of basic auth)"),
    Option(("--history.remote-write-ca-file",), "NETATMO_HISTORY_REMOTE_WRITE_CA_FILE",
           "history_ca_file", "",
           "CA certificate(s) to verify an https:// receiver with (default: the system's)"),
)


def build_parser(prog: str = "netatmo-exporter") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Prometheus exporter for Netatmo weather stations and Home Coach devices. "
                    "Subcommands: flush, check-config, web-user, login, demo, backfill "
                    "(see `%(prog)s COMMAND -h`).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for option in OPTIONS:
        shown = "" if option.secret or not option.default else f"; default: {option.default}"
        help_text = f"{option.help} [env {option.env}{shown}]"
        if option.switch:
            parser.add_argument(*option.flags, dest=option.dest, action="store_const",
                                const="true", default=None, help=help_text)
        elif option.repeat:
            parser.add_argument(*option.flags, dest=option.dest, action="append",
                                default=None, metavar="VALUE", help=help_text)
        else:
            parser.add_argument(*option.flags, dest=option.dest, default=None,
                                metavar="VALUE", help=help_text)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Flag, else environment variable, else default, as strings."""
    values: dict[str, str] = {}
    for option in OPTIONS:
        flag_value = getattr(args, option.dest, None)
        env_value = environ.get(option.env)
        if flag_value is not None and option.repeat:
            values[option.dest] = "\n".join(flag_value)
        elif flag_value is not None:
            values[option.dest] = flag_value
        elif env_value is not None and (env_value != "" or not option.switch):
            values[option.dest] = env_value
        else:
            values[option.dest] = option.default
    return values


def load_config(argv: Sequence[str], environ: Mapping[str, str],
                require_credentials: bool = True) -> Config:
    args = build_parser().parse_args(list(argv))
    return config_from(resolve(args, environ), environ, require_credentials)


def _option(dest: str) -> Option:
    return next(option for option in OPTIONS if option.dest == dest)


def _fail(dest: str, problem: str) -> ConfigError:
    return ConfigError(f"{_option(dest).names}: {problem}")


def parse_addr(addr: str) -> tuple[str, int]:
    match = re.fullmatch(r"(?:\[([0-9A-Fa-f:.%\w]+)\]|([^:\[\]]*)):(\d{1,5})", addr.strip())
    if match is None:
        raise _fail("addr", f"{addr!r} is not host:port (e.g. :9210, 0.0.0.0:9210, [::1]:9210)")
    port = int(match.group(3))
    if not 0 <= port <= 65535:
        raise _fail("addr", f"port {port} is out of range")
    return match.group(1) or match.group(2) or "", port


def _switch(value: str, dest: str) -> bool:
    if dest == "debug_handlers":
        return value != ""
    lowered = value.strip().lower()
    if lowered in ("", "0", "false", "no", "off"):
        return False
    if lowered in ("1", "true", "yes", "on"):
        return True
    raise _fail(dest, f"{value!r} is not a boolean (true/false)")


def _duration(values: Mapping[str, str], dest: str) -> float:
    try:
        seconds = parse_duration(values[dest])
    except ValueError as exc:
        raise _fail(dest, str(exc)) from None
    if seconds <= 0:
        raise _fail(dest, f"{values[dest]!r} must be positive")
    return seconds


def default_external_url(host: str, port: int) -> str:
    if not host or host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return http_url(host, port)


def config_from(values: Mapping[str, str], environ: Mapping[str, str],
                require_credentials: bool = True) -> Config:
    host, port = parse_addr(values["addr"])
    refresh = _duration(values, "refresh_interval")
    stale = _duration(values, "age_stale")
    if stale < refresh:
        raise _fail("age_stale", f"{values['age_stale']} is shorter than the refresh interval "
                    f"{values['refresh_interval']}; it must be at least as long")
    refresh_mode = _refresh_mode(values["refresh_mode"])
    level = values["log_level"].strip().lower()
    if level == "warning":
        level = "warn"
    if level not in LOG_LEVELS:
        raise _fail("log_level", f"{values['log_level']!r} is not one of {', '.join(LOG_LEVELS)}")
    log_format = values["log_format"].strip().lower()
    if log_format not in LOG_FORMATS:
        raise _fail("log_format", f"{values['log_format']!r} is not logfmt or json")
    scopes = tuple(values["scope"].replace(",", " ").split())
    unknown = [scope for scope in scopes if scope not in KNOWN_SCOPES]
    if not scopes or unknown:
        raise _fail("scope", f"use one or more of {', '.join(KNOWN_SCOPES)}")
    external_url = values["external_url"].strip() or default_external_url(host, port)
    _check_url("external_url", external_url)
    api_url = values["api_url"].strip()
    _check_url("api_url", api_url)
    if require_credentials:
        for dest in ("client_id", "client_secret", "token_file"):
            if not values[dest].strip():
                raise _fail(dest, "is required")
    token_file = values["token_file"].strip()
    if token_file:
        _check_token_dir("token_file", Path(token_file))
    control = values["control_socket"].strip() or default_control_socket(environ)
    allowed_hosts = tuple(name.strip() for name in values["allowed_hosts"].split(",")
                          if name.strip())
    bad_hosts = [name for name in allowed_hosts if not _HOST_NAME.fullmatch(name)]
    if bad_hosts:
        raise _fail("allowed_hosts", f"{bad_hosts[0]!r} is not a host name")
    web_config = None
    if values["web_config_file"].strip():
        # YAML (and bcrypt, for its users) load only with a web configuration.
        from netatmo_exporter.adapters.web.config_file import WebConfigError, load_web_config

        try:
            web_config = load_web_config(values["web_config_file"].strip())
        except WebConfigError as exc:
            raise _fail("web_config_file", str(exc)) from None
    history = _history(values)
    _check_trust_store(environ, history.ca_file if history else "")
    return Config(
        host=host, port=port, external_url=external_url.rstrip("/"), token_file=token_file,
        client_id=values["client_id"].strip(), client_secret=values["client_secret"].strip(),
        refresh_interval=refresh, refresh_mode=refresh_mode, age_stale=stale, log_level=level,
        log_format=log_format,
        debug_handlers=_switch(values["debug_handlers"], "debug_handlers"),
        api_url=api_url.rstrip("/"), scopes=scopes,
        favorites=_switch(values["favorites"], "favorites"), control_socket=control or None,
        external_url_configured=bool(values["external_url"].strip()),
        allowed_hosts=allowed_hosts, web_config=web_config, history=history,
    )


def _check_trust_store(environ: Mapping[str, str], ca_file: str) -> None:
    """The CAs to trust for https:// load (OpenSSL's variables, the receiver's CA file): one
    context built and dropped, so that a store that cannot load stops the start here."""
    try:
        trust_context(ca_file, env=environ)
    except UnusableTrustStore as exc:
        if exc.extra:
            raise _fail("history_ca_file", str(exc)) from None
        raise ConfigError(f"the certificates to trust for https://: {exc}") from None


def _history(values: Mapping[str, str]) -> HistorySettings | None:
    url = values["history_url"].strip()
    if not url:
        return None
    _check_url("history_url", url)
    labels: list[tuple[str, str]] = []
    for item in re.split(r"[\n,]", values["history_labels"]):
        if not item.strip():
            continue
        name, sep, value = item.strip().partition("=")
        if not sep or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) or name.startswith("__"):
            raise _fail("history_labels", f"{item!r}: give NAME=VALUE with a Prometheus "
                        "label name")
        if name in ("module", "station", "home", "room"):
            raise _fail("history_labels", f"{name}: the exporter sets {name} itself")
        if name in (n for n, _ in labels):
            raise _fail("history_labels", f"{name} is given twice")
        labels.append((name, value))
    username = values["history_username"].strip()
    password_file = values["history_password_file"].strip()
    bearer_file = values["history_bearer_token_file"].strip()
    ca_file = values["history_ca_file"].strip()
    if bearer_file and (username or password_file):
        raise _fail("history_bearer_token_file", "give either a bearer token file or basic "
                    "auth (user name and password file), not both")
    if bool(username) != bool(password_file):
        raise _fail("history_password_file" if username else "history_username",
                    "basic auth needs both the user name and the password file")
    for dest, path in (("history_password_file", password_file),
                       ("history_bearer_token_file", bearer_file), ("history_ca_file", ca_file)):
        if path and not os.access(path, os.R_OK):
            raise _fail(dest, f"{path} cannot be read by this user")
    if urlsplit(url).scheme != "https" and ca_file:
        raise _fail("history_ca_file", "a CA file is for an https:// receiver")
    return HistorySettings(url, tuple(labels), _duration(values, "history_lookback"),
                           _duration(values, "history_interval"), username, password_file,
                           bearer_file, ca_file)


def _refresh_mode(value: str) -> RefreshMode:
    for mode in REFRESH_MODES:
        if value.strip().lower() == mode:
            return mode
    raise _fail("refresh_mode", f"{value!r} is not one of {', '.join(REFRESH_MODES)}")


def default_control_socket(environ: Mapping[str, str]) -> str:
    """`$RUNTIME_DIRECTORY/control.sock` under systemd (its first directory), else ""."""
    runtime = environ.get("RUNTIME_DIRECTORY", "")
    return os.path.join(runtime.split(":")[0], "control.sock") if runtime else ""


def _check_url(dest: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail(dest, f"{url!r} is not an http(s) URL")


def _check_token_dir(dest: str, path: Path) -> None:
    if "\x00" in str(path):
        raise _fail(dest, "the path contains a NUL character")
    directory = path.parent
    if path.is_dir():
        raise _fail(dest, f"{path} is a directory; give a file path")
    if not directory.is_dir():
        raise _fail(dest, f"directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise _fail(dest, f"directory {directory} is not writable by this user")
    lock = renewal_lock_path(path)
    problem = foreign_path(lock)
    if problem:
        raise _fail(dest, f"the renewal lock {lock} {problem}: remove it (a lock another "
                          "user holds would stop every renewal), or keep the token file in "
                          "a folder only this user may write")
