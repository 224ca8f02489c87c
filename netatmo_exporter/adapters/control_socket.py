"""A unix socket on which the running exporter accepts commands from the same user.

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
import socket
import stat
import threading
from collections.abc import Callable

from netatmo_exporter.adapters.file_owner import foreign_path
from netatmo_exporter.domain.errors import (
    InvalidClient,
    InvalidGrant,
    NetatmoError,
    NotAuthorized,
    TokenFileError,
    TransientError,
)
from netatmo_exporter.domain.ports import AccessTokens, EventLog

MAX_REQUEST = 4096
REJECT = "reject-access-token "
BOOK = "book-call "
MAX_SHARE = 500


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
    with `ok <token>\\n`, or `error <reason> <why>\\n`."""

    def __init__(self, path: str, flush: Callable[[], str], log: EventLog,
                 tokens: AccessTokens | None = None,
                 book: Callable[[int], float] | None = None) -> None:
        """`book(share)`: books one backfill call in the service's budget within `share`
        calls an hour; returns 0, or the seconds to wait (nothing booked)."""
        self._path = path
        self._flush = flush
        self._log = log
        self._tokens = tokens
        self._book = book
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Raises `UnsafeSocketPath` for a path it must not replace."""
        problem = socket_path_problem(self._path)
        if problem:
            raise UnsafeSocketPath(f"--control-socket {problem}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(self._path)
        finally:
            os.umask(old_umask)
        sock.listen(8)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()
        self._log.info("control_socket_listening", path=self._path)

    def stop(self) -> None:
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
            with conn:
                conn.settimeout(5.0)
                with contextlib.suppress(OSError):
                    conn.sendall(self._answer(_read_line(conn)))

    def _answer(self, request: bytes) -> bytes:
        command = request.decode(errors="replace").strip()
        if command == "access-token" and self._tokens is not None:
            return self._access_token(self._tokens)
        if command.startswith(BOOK) and self._book is not None:
            return _booking(self._book, command.removeprefix(BOOK))
        if command.startswith(REJECT) and self._tokens is not None:
            self._tokens.reject_access_token(command.removeprefix(REJECT))
            self._log.info("access_token_rejected_by_client")
            return b"ok\n"
        if command != "flush":
            return b"error unknown command\n"
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
        except Exception as exc:  # the control thread must outlive any one request
            self._log.error("access_token_failed", error=type(exc).__name__)
            return f"error internal {type(exc).__name__}\n".encode()
        self._log.debug("access_token_handed_out")
        return f"ok {token}\n".encode()


def _booking(book: Callable[[int], float], share: str) -> bytes:
    if not share.isdigit() or not 1 <= int(share) <= MAX_SHARE:
        return f"error bad_share give 1 to {MAX_SHARE} calls an hour\n".encode()
    wait = book(int(share))
    return b"ok\n" if wait <= 0.0 else f"wait {wait:.3f}\n".encode()


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < MAX_REQUEST:
        chunk = conn.recv(MAX_REQUEST - len(data))
        if not chunk:
            break
        data += chunk
    return data


def request_flush(path: str, timeout: float) -> tuple[int, str]:
    """Ask a running exporter to flush; returns (exit code, one line for the user)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    with sock:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return 0, "exporter not running; nothing to flush"
        except OSError as exc:
            return 1, f"cannot reach the exporter at {path}: {exc.strerror or exc}"
        try:
            sock.sendall(b"flush\n")
            answer = sock.recv(4096).decode(errors="replace").strip()
        except TimeoutError:
            return 1, f"the exporter did not confirm the flush within {timeout:g}s"
        except OSError as exc:
            return 1, f"flush interrupted: {exc.strerror or exc}"
    if answer.startswith("ok "):
        return 0, f"token flushed to {answer[3:]}"
    if not answer:
        return 1, "the exporter closed the control socket without confirming the flush"
    return 1, f"flush failed: {answer.removeprefix('error ')}"


class ServiceUnreachable(NetatmoError):
    """The running exporter stopped answering on its control socket."""

    reason = "service_unreachable"


class ServiceTokens:
    """Access tokens from the running exporter, which alone renews the authorization;
    satisfies `AccessTokens`."""

    def __init__(self, path: str, timeout: float = 90.0) -> None:
        self.path = path
        self._timeout = timeout

    def access_token(self) -> str:
        answer = self._ask("access-token")
        if answer.startswith("ok ") and len(answer) > 3:
            return answer[3:]
        reason, _, message = answer.removeprefix("error ").partition(" ")
        if reason == NotAuthorized.reason:
            raise NotAuthorized()
        if reason == InvalidGrant.reason:
            raise InvalidGrant()
        if reason == InvalidClient.reason:
            raise InvalidClient()
        if reason == "unknown":  # "error unknown command": an exporter from before backfill
            raise ServiceUnreachable(f"the exporter at {self.path} does not hand out access "
                                     "tokens: upgrade and restart it")
        raise TransientError(f"the exporter could not renew the access token: "
                             f"{message or answer}", reason or "transient")

    def reject_access_token(self, access_token: str) -> None:
        self._ask(REJECT + access_token)

    def _ask(self, command: str) -> str:
        return _ask(self.path, self._timeout, command)


class ServiceBudget:
    """The running exporter's budget for the account, booked call by call; satisfies the
    call policy's `Budget` for the backfill (the caller it books is always the backfill)."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path
        self._timeout = timeout
        self.booking = True
        """False once the exporter said it books nothing (a version from before): the
        backfill's own budget alone paces it then."""

    def take(self, caller: str, hourly_share: int | None, now: float) -> float:
        if not self.booking:
            return 0.0
        answer = _ask(self.path, self._timeout, f"{BOOK}{hourly_share or MAX_SHARE}")
        if answer == "ok":
            return 0.0
        if answer.startswith("wait "):
            try:
                return max(0.0, float(answer[5:]))
            except ValueError:
                pass
        if answer == "error unknown command":
            self.booking = False
            return 0.0
        raise TransientError(f"the exporter did not book the call: {answer or 'no answer'}",
                             "service_budget")


def _ask(path: str, timeout: float, command: str) -> str:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    with sock:
        try:
            sock.connect(path)
            sock.sendall(command.encode() + b"\n")
            return _read_line(sock).decode(errors="replace").strip()
        except OSError as exc:
            raise ServiceUnreachable(
                f"the exporter no longer answers on {path} "
                f"({exc.strerror or type(exc).__name__}): run the same command again "
                "once it runs; the backfill continues where it stopped") from None


def service_listening(path: str) -> bool:
    """True when a process accepts connections on the control socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    with sock:
        try:
            sock.connect(path)
        except OSError:
            return False
    return True
