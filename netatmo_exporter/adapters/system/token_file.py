"""The token file, in the Go exporter's JSON format, written atomically with mode 0600."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from netatmo_exporter.adapters.system.atomic_file import move_aside, write_atomically
from netatmo_exporter.adapters.system.file_owner import foreign, foreign_path
from netatmo_exporter.adapters.system.logging import SecretRedactor
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.errors import CorruptTokenFile, TokenFileError, TransientError
from netatmo_exporter.domain.ports import TokenStore

MAX_TOKEN_FILE_BYTES = 64 * 1024
LOCK_WAIT = 120.0
"""How long a writer waits for another process's renewal: longer than any token request."""
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|z|[+-]\d{2}:\d{2})$"
)


def parse_expiry(text: str) -> datetime | None:
    """RFC 3339 as Go writes it (nanoseconds, `Z` or an offset); Go's zero time is None."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"expiry {text[:40]!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if int(year) <= 1:
        return None
    tz = UTC if zone in ("Z", "z") else timezone(
        (1 if zone[0] == "+" else -1)
        * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    )
    micros = int((fraction or "0").ljust(6, "0")[:6])
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                    micros, tzinfo=tz)


def format_expiry(expiry: datetime | None) -> str:
    if expiry is None:
        return GO_ZERO_TIME
    text = expiry.isoformat(timespec="microseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def token_from_json(raw: bytes) -> Token:
    """Parse the token file's content. Raises ValueError saying what is wrong."""
    try:
        data: Any = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    access, refresh = data.get("access_token", ""), data.get("refresh_token", "")
    if not isinstance(access, str) or not isinstance(refresh, str):
        raise ValueError("access_token and refresh_token must be strings")
    if not access and not refresh:
        raise ValueError("holds neither an access_token nor a refresh_token")
    expiry_text = data.get("expiry")
    if expiry_text is not None and not isinstance(expiry_text, str):
        raise ValueError("expiry must be an RFC 3339 string")
    expiry = parse_expiry(expiry_text) if expiry_text else None
    token_type = data.get("token_type")
    lifetime = data.get("expires_in")
    scope = data.get("scope")
    authorized_at, renewals = _authorization(data)
    return Token(
        access_token=access,
        refresh_token=refresh,
        expiry=expiry,
        token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
        lifetime=float(lifetime) if isinstance(lifetime, int | float)
        and not isinstance(lifetime, bool) and lifetime > 0 else None,
        scope=tuple(s for s in scope if isinstance(s, str)) if isinstance(scope, list) else None,
        authorized_at=authorized_at,
        renewals=renewals,
    )


def _authorization(data: dict[str, Any]) -> tuple[datetime | None, int]:
    """The token's authorization identity (`authorized_at`, `renewals`): fields of ours
    that the Go exporter ignores. Missing or unusable: a token of unknown lineage."""
    text, renewals = data.get("authorized_at"), data.get("renewals", 0)
    if not isinstance(text, str) or isinstance(renewals, bool) or not isinstance(renewals, int):
        return None, 0
    try:
        authorized_at = parse_expiry(text)
    except ValueError:
        return None, 0
    return authorized_at, max(0, renewals) if authorized_at is not None else 0


def token_to_json(token: Token) -> bytes:
    data: dict[str, Any] = {
        "access_token": token.access_token,
        "token_type": token.token_type,
        "refresh_token": token.refresh_token,
        "expiry": format_expiry(token.expiry),
    }
    if token.lifetime:
        data["expires_in"] = round(token.lifetime)
    if token.scope is not None:
        data["scope"] = list(token.scope)
    if token.authorized_at is not None:
        data["authorized_at"] = format_expiry(token.authorized_at)
        data["renewals"] = token.renewals
    return json.dumps(data).encode() + b"\n"


class FileTokenStore:
    """Satisfies `TokenStore`. A write is temp file + fsync + rename + directory fsync, so a
    crash leaves the old or the new token, never a torn file. Unusable content is moved
    aside to `<file>.corrupt-<time>` instead of being overwritten."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._seen: tuple[int, int, int] | None = None

    @property
    def location(self) -> str:
        return str(self._path)

    def load(self) -> Token | None:
        try:
            raw = self._read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenFileError(f"cannot read token file {self._path}: {exc.strerror}") from None
        try:
            return _parse(raw)
        except ValueError as exc:
            moved_to = move_aside(self._path)
            where = f"; kept as {moved_to}" if moved_to else "; left in place"
            raise CorruptTokenFile(
                f"token file {self._path} is unusable ({exc}){where}", moved_to
            ) from None

    def load_if_replaced(self) -> Token | None:
        """The token another program wrote since this store last read or wrote the file
        (the headless `login`, a copied Go token file); None when the file is unchanged,
        gone or unusable (unusable content is left for the next start to report)."""
        try:
            info = os.stat(self._path)
        except OSError:
            return None
        if _identity(info) == self._seen:
            return None
        try:
            return _parse(self._read())
        except (OSError, ValueError):
            self._seen = _identity(info)
            return None

    def holds_last_seen(self) -> bool:
        try:
            return _identity(os.stat(self._path)) == self._seen
        except OSError:
            return False

    def _read(self) -> bytes:
        with open(self._path, "rb") as handle:
            raw = handle.read(MAX_TOKEN_FILE_BYTES + 1)
            self._seen = _identity(os.fstat(handle.fileno()))
        return raw

    def save(self, token: Token) -> None:
        try:
            written = write_atomically(self._path, token_to_json(token))
        except OSError as exc:
            raise TokenFileError(
                f"cannot write token file {self._path}: {exc.strerror}") from None
        self._seen = _identity(written)

    @contextlib.contextmanager
    def renewal_lock(self, wait: float = LOCK_WAIT) -> Iterator[object]:
        """An advisory lock (flock) on `<file>.lock` beside the token file, which every
        process using this file takes to renew or write it. The token file itself cannot carry it: a
        save replaces it by another inode. The lock file is never removed (a removed one
        would let two processes lock two inodes); it holds nothing."""
        lock = renewal_lock_path(self._path)
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError:
            _refuse_foreign_lock(lock, foreign_path(lock))
            # A directory the token cannot be saved to either: the save reports it; a lock
            # the other process could not take either would protect nothing.
            yield None
            return
        try:
            _refuse_foreign_lock(lock, foreign(os.fstat(fd)))
            _lock_within(fd, wait, self._path)
            yield None
        finally:
            os.close(fd)  # closing releases the lock


def renewal_lock_path(token_file: str | os.PathLike[str]) -> str:
    return f"{token_file}.lock"


def _refuse_foreign_lock(lock: str, problem: str | None) -> None:
    """A lock file another user made (in a shared folder) could be held by them for ever:
    no renewal waits on it."""
    if problem:
        raise TransientError(f"the renewal lock {lock} {problem}: remove it, or keep the "
                             "token file in a folder only this user may write",
                             "token_lock_refused")


def _parse(raw: bytes) -> Token:
    if len(raw) > MAX_TOKEN_FILE_BYTES:
        raise ValueError(f"larger than {MAX_TOKEN_FILE_BYTES} bytes")
    return token_from_json(raw)


def _lock_within(fd: int, seconds: float, path: Path) -> None:
    # Polled rather than blocking, so that a process hung in a renewal does not hang this
    # one for ever, and Ctrl-C is not held up.
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TransientError(f"another process has been renewing the token of {path} "
                                     f"for {seconds:g}s", "token_file_locked") from None
            time.sleep(0.05)


def _identity(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_ino, info.st_mtime_ns, info.st_size


class RedactingTokenStore:
    """A `TokenStore` that registers every token passing through it with the log
    redactor, so no log line shows one, whichever code logs it."""

    def __init__(self, inner: TokenStore, redactor: SecretRedactor) -> None:
        self._inner = inner
        self._redactor = redactor

    @property
    def location(self) -> str:
        return self._inner.location

    def load(self) -> Token | None:
        token = self._inner.load()
        if token is not None:
            self._redactor.add(token.access_token, token.refresh_token)
        return token

    def load_if_replaced(self) -> Token | None:
        token = self._inner.load_if_replaced()
        if token is not None:
            self._redactor.add(token.access_token, token.refresh_token)
        return token

    def holds_last_seen(self) -> bool:
        return self._inner.holds_last_seen()

    def save(self, token: Token) -> None:
        self._redactor.add(token.access_token, token.refresh_token)
        self._inner.save(token)

    def renewal_lock(self, wait: float = LOCK_WAIT) -> AbstractContextManager[object]:
        return self._inner.renewal_lock(wait)
