"""The Prometheus exporter-toolkit web configuration file (`--web.config.file`).

The same YAML that Go exporters read:

    basic_auth_users:
      prometheus: $2y$10$...        # bcrypt hashes, as `htpasswd -nBC 10 ""` prints them
    http_server_config:
      headers: {X-Example: value}
    tls_server_config: {...}        # refused here: put a TLS reverse proxy in front

Unknown keys and malformed hashes are errors naming the file and the key, so a typo does
not leave the exporter silently unprotected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_BCRYPT_HASH = re.compile(r"\$2[abxy]?\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FORBIDDEN_HEADERS = {"content-length", "content-type", "connection", "transfer-encoding",
                      "www-authenticate", "set-cookie", "date", "server"}
TOP_KEYS = ("basic_auth_users", "http_server_config", "tls_server_config")
HTTP_SERVER_KEYS = ("headers", "http2")


class WebConfigError(Exception):
    """The web configuration file cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class WebConfig:
    path: str
    basic_auth_users: dict[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()


def load_web_config(path: str) -> WebConfig:
    def fail(key: str, problem: str) -> WebConfigError:
        where = f"{path}: {key}: " if key else f"{path}: "
        return WebConfigError(where + problem)

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail("", f"cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise fail("", f"not valid YAML{where}") from None
    if document is None:
        return WebConfig(path)
    if not isinstance(document, dict):
        raise fail("", "expected a mapping of settings at the top level")
    for key in document:
        if key not in TOP_KEYS:
            raise fail(str(key), f"unknown key (known: {', '.join(TOP_KEYS)})")
    if document.get("tls_server_config"):
        raise fail("tls_server_config", "this exporter does not serve TLS itself; serve it "
                   "through a reverse proxy (docs/reverse-proxy.md) and remove this key")
    users = _users(document.get("basic_auth_users"), fail)
    headers = _headers(document.get("http_server_config"), fail)
    return WebConfig(path, users, headers)


def _users(value: Any, fail: Any) -> dict[str, bytes]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail("basic_auth_users", "expected a mapping of user name to bcrypt hash")
    users: dict[str, bytes] = {}
    for name, hashed in value.items():
        key = f"basic_auth_users.{name}"
        if not isinstance(name, str) or not name or ":" in name:
            raise fail(key, "a user name is a non-empty string without ':'")
        if not isinstance(hashed, str) or not _BCRYPT_HASH.fullmatch(hashed):
            raise fail(key, "not a bcrypt hash (make one with `htpasswd -nBC 10 USER`)")
        users[name] = hashed.encode()
    return users


def _headers(value: Any, fail: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise fail("http_server_config", "expected a mapping")
    for key in value:
        if key not in HTTP_SERVER_KEYS:
            raise fail(f"http_server_config.{key}",
                       f"unknown key (known: {', '.join(HTTP_SERVER_KEYS)})")
    if value.get("http2") not in (None, True, False):
        raise fail("http_server_config.http2", "expected true or false")
    headers = value.get("headers") or {}
    if not isinstance(headers, dict):
        raise fail("http_server_config.headers", "expected a mapping of header to value")
    result = []
    for name, text in headers.items():
        key = f"http_server_config.headers.{name}"
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name) or \
                name.lower() in _FORBIDDEN_HEADERS:
            raise fail(key, "not a header this exporter lets a configuration set")
        if not isinstance(text, str) or not text.isprintable() or not text.isascii():
            raise fail(key, "the value must be printable ASCII text")
        result.append((name, text))
    return tuple(result)
