"""The Prometheus exporter-toolkit web configuration file (`--web.config.file`).

The same YAML that Go exporters read:

    basic_auth_users:
      prometheus: $2b$10$...        # bcrypt hashes: `netatmo-exporter web-user NAME` sets one
    http_server_config:
      headers: {X-Example: value}
    tls_server_config: {...}        # refused here: put a TLS reverse proxy in front

Unknown keys and malformed hashes are errors naming the file and the key, so a typo does
not leave the exporter silently unprotected.
"""

from __future__ import annotations

import contextlib
import grp
import os
import re
import stat
import tempfile
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
    return parse_web_config(_read(path), path)


def _failure(path: str) -> Any:
    def fail(key: str, problem: str) -> WebConfigError:
        where = f"{path}: {key}: " if key else f"{path}: "
        return WebConfigError(where + problem)
    return fail


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _failure(path)("", f"cannot read it ({getattr(exc, 'strerror', None) or exc})"
                             ) from None


def _document(text: str, path: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise _failure(path)("", f"not valid YAML{where}") from None


def parse_web_config(text: str, path: str) -> WebConfig:
    """The settings of `text`; errors name `path` and the key."""
    fail = _failure(path)
    document = _document(text, path)
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
    users = _users(document.get("basic_auth_users"), fail, path)
    headers = _headers(document.get("http_server_config"), fail)
    return WebConfig(path, users, headers)


def _users(value: Any, fail: Any, path: str) -> dict[str, bytes]:
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
            raise fail(key, "not a bcrypt hash (set the password with: netatmo-exporter "
                             f"web-user --web.config.file {path} {name})")
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


# bcrypt reads at most 72 bytes of a password (newer releases refuse longer ones).
MAX_PASSWORD_BYTES = 72
# A new file: the owner writes, the service's group reads, nobody else sees the hashes.
NEW_FILE_MODE = 0o640


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt hash as exporter-toolkit reads it (cost 10, as `htpasswd -B` makes)."""
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


def set_user(path: str, name: str, hashed: str, group: str | None = None) -> bool:
    """Adds or changes one user of `basic_auth_users`, keeping every other user and key,
    and returns whether the user is new.

    The file is replaced atomically by a complete, valid one. An existing file keeps its
    owner, group and mode (without any permission for others); a new one gets mode 0640
    and `group` (a group name), so that the service's group can read it. Comments are not
    kept: the file is written back from its parsed settings."""
    fail = _failure(path)
    target = Path(path)
    existing = target.stat() if target.exists() else None
    document: Any = _document(_read(path), path) if existing is not None else None
    document = {} if document is None else document
    if not isinstance(document, dict):
        raise fail("", "expected a mapping of settings at the top level")
    users = document.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise fail("basic_auth_users", "expected a mapping of user name to bcrypt hash")
    if not name or ":" in name or not name.isprintable():
        raise fail(f"basic_auth_users.{name}", "a user name is non-empty printable text "
                   "without ':'")
    added = name not in users
    document["basic_auth_users"] = {**users, name: hashed}
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False,
                          allow_unicode=True)
    parse_web_config(text, path)
    gid = -1
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise WebConfigError(f"{path}: no group named {group!r}") from None
    if existing is not None:
        mode = stat.S_IMODE(existing.st_mode) & 0o770 & ~0o111
        owner, gid = existing.st_uid, existing.st_gid if gid == -1 else gid
    else:
        mode, owner = NEW_FILE_MODE, -1
    _replace(target, text, mode, owner, gid)
    return added


def _replace(target: Path, text: str, mode: int, owner: int, gid: int) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), mode)
            if owner not in (-1, os.geteuid()) or gid not in (-1, os.getegid()):
                try:
                    os.fchown(stream.fileno(), owner, gid)
                except PermissionError:
                    raise WebConfigError(f"{target}: only root can give it owner {owner} "
                                         f"and group {gid}") from None
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
