"""A unix socket on which the running exporter accepts commands from the same user (the
server and its protocol; the clients are in `control_client`).

`flush` (systemd's ExecStop) writes the token durably; `access-token` hands out a valid
access token, renewed by the service's own `TokenManager` when due, and
`reject-access-token TOKEN` reports one the API refused, so that a backfill beside the
service never renews the authorization itself. `book-call SHARE` books one of the backfill's
calls in the service's budget for the account (`ok`), within SHARE calls an hour, or says
how long to wait (`wait SECONDS`). The socket is mode 0600.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from netatmo_exporter.adapters.system.file_owner import foreign_path
from netatmo_exporter.domain.call_policy import (
    BACKFILL_MAX_HOURLY_SHARE,
    BACKFILL_WINDOW_SHARE,
    LONG_LIMIT,
    SHORT_WINDOW,
)
from netatmo_exporter.domain.errors import (
    NetatmoError,
    TokenFileError,
)
from netatmo_exporter.domain.ports import AccessTokens, EventLog

MAX_REQUEST = 4096
REJECT = "reject-access-token "
BOOK = "book-call "
MAX_SHARE = LONG_LIMIT
"""The largest share a client may ask for (the backfill's `--hourly-calls`)."""
BOOKED_SHARE_CAP = BACKFILL_MAX_HOURLY_SHARE
"""The most of the account's hour the service books for its clients, whatever they ask:
the service keeps a fifth of it for itself."""
BOOKINGS = (BACKFILL_WINDOW_SHARE, SHORT_WINDOW)
"""At most this many bookings in any this many seconds: the backfill's own pace."""
REJECTIONS = (3, 60.0)
"""At most this many rejected access tokens honoured (each forces a renewal) a minute."""
MAX_CONNECTIONS = 16
MAX_TOKEN_REQUESTS = 4
"""`access-token` requests waiting at once (for a renewal, say): the other connections
stay free for `flush`."""
REQUEST_DEADLINE = 2.0
"""A client has this long to send its whole request line."""
ANSWER_DEADLINE = 5.0
UNKNOWN = b"error unknown command\n"
"""What an exporter from before a command answers; clients fall back on it."""
BUSY = b"error busy too many requests at once; try again\n"
_COMMAND = re.compile(rb"(flush|access-token|reject-access-token|book-call)(?: ([!-~]{1,2048}))?")
_SHARE = re.compile(rb"[0-9]{1,4}")


@dataclass(frozen=True, slots=True)
class Command:
    """One request line, checked: `name` is a known command, `argument` its checked value."""

    name: str
    argument: str | int | None = None


class BadRequest(ValueError):
    """A request line that is not a command; its message is the answer's reason."""


def parse_command(line: bytes) -> Command:
    """The command a request line holds; raises `BadRequest` saying why it is none."""
    match = _COMMAND.fullmatch(line.removesuffix(b"\n").removesuffix(b"\r"))
    if match is None:
        raise BadRequest("unknown command")
    name, argument = match.group(1).decode(), match.group(2)
    if name in ("flush", "access-token"):
        if argument is not None:
            raise BadRequest(f"{name} takes no argument")
        return Command(name)
    if argument is None:
        raise BadRequest(f"{name} needs an argument")
    if name == "book-call":
        if _SHARE.fullmatch(argument) is None or not 1 <= int(argument) <= MAX_SHARE:
            raise BadRequest(f"bad_share give 1 to {MAX_SHARE} calls an hour")
        return Command(name, int(argument))
    return Command(name, argument.decode())


class _Window:
    """At most `limit` events in any `seconds`; thread-safe."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float]) -> None:
        self._limit, self._seconds, self._clock = limit, seconds, clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Counts one event and returns 0, or returns how long until one is allowed."""
        with self._lock:
            now = self._clock()
            while self._times and self._times[0] <= now - self._seconds:
                self._times.popleft()
            if len(self._times) >= self._limit:
                return self._times[0] + self._seconds - now
            self._times.append(now)
            return 0.0


class UnsafeSocketPath(Exception):
    """The control socket's path holds something this process must not replace."""


def socket_path_problem(path: str) -> str | None:
    """Why the service must not take `path` (unlinking what is there, then listening):
    another user's file (in a shared folder it could be theirs to listen on), a link, or
    no socket at all (a mistyped path to a file). None when it is free or a socket of ours
    a previous run left."""
    problem = foreign_path(path)
    if problem is None:
        try:
            is_socket = stat.S_ISSOCK(os.lstat(path).st_mode)
        except OSError:
            return None
        problem = None if is_socket else "is not a socket"
    return f"{path} {problem}: remove it, or give another path" if problem else None


class ControlSocketServer:
    """Answers `flush\\n` with `ok <path>\\n` once the token is on disk, `access-token\\n`
    with `ok <token>\\n`, or `error <reason> <why>\\n`.

    One request a connection, each connection served by a thread of its own (at most
    `MAX_CONNECTIONS`, of which `MAX_TOKEN_REQUESTS` may wait for a token), so that a
    flush never waits behind a renewal or a slow client: a request line must arrive whole
    within `REQUEST_DEADLINE`, in at most `MAX_REQUEST` bytes. Whatever a line holds, it
    gets one answer and the server lives on. Bookings and honoured rejections are rate
    limited for all clients together (`BOOKINGS`, `REJECTIONS`), and no client's share
    goes beyond `BOOKED_SHARE_CAP`."""

    def __init__(self, path: str, flush: Callable[[], str], log: EventLog,
                 tokens: AccessTokens | None = None,
                 book: Callable[[int], float] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`book(share)`: books one backfill call in the service's budget within `share`
        calls an hour; returns 0, or the seconds to wait (nothing booked). `clock` paces
        the rate limits."""
        self._path = path
        self._flush = flush
        self._log = log
        self._tokens = tokens
        self._book = book
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._token_requests = threading.BoundedSemaphore(MAX_TOKEN_REQUESTS)
        self._bookings = _Window(*BOOKINGS, clock)
        self._rejections = _Window(*REJECTIONS, clock)

    def start(self) -> None:
        """Raises `UnsafeSocketPath` for a path it must not replace or cannot listen on."""
        problem = socket_path_problem(self._path)
        if problem:
            raise UnsafeSocketPath(f"--control-socket {problem}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            sock.bind(self._path)
            sock.listen(MAX_CONNECTIONS)
        except OSError as exc:
            sock.close()
            raise UnsafeSocketPath(
                f"--control-socket {self._path}: cannot listen there "
                f"({exc.strerror or exc}): give a short path in a folder the "
                "service may write") from None
        finally:
            os.umask(old_umask)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()
        self._log.info("control_socket_listening", path=self._path)

    def stop(self) -> None:
        """Stops listening; requests in flight (a token waiting on Netatmo) are abandoned."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if not self._connections.acquire(blocking=False):
                _answer_and_close(conn, BUSY)
                continue
            threading.Thread(target=self._serve_one, args=(conn,), name="control-request",
                             daemon=True).start()

    def _serve_one(self, conn: socket.socket) -> None:
        try:
            line, problem = _read_request(conn, time.monotonic() + REQUEST_DEADLINE)
            if problem is not None:
                _answer_and_close(conn, problem, unread=True)
                return
            _answer_and_close(conn, self._answer(line))
        except Exception as exc:  # one request's failure must not take the socket down
            self._log.error("control_request_failed", error=type(exc).__name__)
            _answer_and_close(conn, f"error internal {type(exc).__name__}\n".encode())
        finally:
            self._connections.release()

    def _answer(self, line: bytes) -> bytes:
        try:
            command = parse_command(line)
        except BadRequest as exc:
            return f"error {exc}\n".encode()
        if command.name == "flush":
            return self._flush_answer()
        if command.name == "book-call":
            assert isinstance(command.argument, int)
            return UNKNOWN if self._book is None else self._booking(self._book, command.argument)
        if self._tokens is None:
            return UNKNOWN
        if command.name == "access-token":
            if not self._token_requests.acquire(blocking=False):
                return BUSY
            try:
                return self._access_token(self._tokens)
            finally:
                self._token_requests.release()
        assert isinstance(command.argument, str)
        return self._rejection(self._tokens, command.argument)

    def _flush_answer(self) -> bytes:
        try:
            path = self._flush()
        except TokenFileError as exc:
            self._log.error("flush_failed", problem=str(exc))
            return f"error {exc}\n".encode()
        self._log.info("flush_requested", token_file=path)
        return f"ok {path}\n".encode()

    def _access_token(self, tokens: AccessTokens) -> bytes:
        try:
            token = tokens.access_token()
        except NetatmoError as exc:
            self._log.warning("access_token_refused", reason=exc.reason, error=str(exc))
            return f"error {exc.reason} {exc}\n".encode()
        self._log.debug("access_token_handed_out")
        return f"ok {token}\n".encode()

    def _booking(self, book: Callable[[int], float], share: int) -> bytes:
        wait = self._bookings.take()
        if wait <= 0.0:
            wait = book(min(share, BOOKED_SHARE_CAP))
        return b"ok\n" if wait <= 0.0 else f"wait {wait:.3f}\n".encode()

    def _rejection(self, tokens: AccessTokens, access_token: str) -> bytes:
        wait = self._rejections.take()
        if wait > 0.0:
            self._log.warning("access_token_rejections_limited",
                              limit=f"{REJECTIONS[0]} per {REJECTIONS[1]:g}s")
            return f"error rate_limited try again in {wait:.0f}s\n".encode()
        tokens.reject_access_token(access_token)
        self._log.info("access_token_rejected_by_client")
        return b"ok\n"


def _read_request(conn: socket.socket, deadline: float) -> tuple[bytes, bytes | None]:
    """The request line, or the error answer for a client too slow or too long."""
    data = b""
    while b"\n" not in data:
        if len(data) >= MAX_REQUEST:
            return data, f"error too_long a request is at most {MAX_REQUEST} bytes\n".encode()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return data, f"error timeout no request line within {REQUEST_DEADLINE:g}s\n".encode()
        conn.settimeout(remaining)
        try:
            chunk = conn.recv(MAX_REQUEST - len(data))
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data.partition(b"\n")[0], None


def _answer_and_close(conn: socket.socket, answer: bytes, unread: bool = False) -> None:
    """Sends the answer and closes; with `unread` (the client may still be sending),
    reads on a moment first, as closing with unread data would reset the connection
    and destroy the answer."""
    with conn, contextlib.suppress(OSError):
        conn.settimeout(ANSWER_DEADLINE)
        conn.sendall(answer)
        if unread:
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(0.5)
            for _ in range(16):
                if not conn.recv(MAX_REQUEST):
                    break
