"""The control socket's clients: `flush` (systemd's ExecStop, `netatmo-exporter flush`), and
the backfill's access tokens and bookings from the running exporter (`ServiceTokens`,
`ServiceBudget`)."""

from __future__ import annotations

import socket
import time

from netatmo_exporter.adapters.system.control_socket import (
    BOOK,
    BUSY,
    MAX_REQUEST,
    MAX_SHARE,
    REJECT,
)
from netatmo_exporter.domain.errors import (
    InvalidClient,
    InvalidGrant,
    NetatmoError,
    NotAuthorized,
    TransientError,
)


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < MAX_REQUEST:
        chunk = conn.recv(MAX_REQUEST - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _connect(sock: socket.socket, path: str, deadline: float) -> None:
    """Connects, waiting until `deadline` while the exporter's accept queue is full: a unix
    socket with a timeout is refused at once then (EAGAIN, `BlockingIOError`, raised at the
    deadline), where a blocking one would wait; under load the queue fills in a moment."""
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            if time.monotonic() + 0.05 >= deadline:
                raise
            time.sleep(0.05)


def request_flush(path: str, timeout: float) -> tuple[int, str]:
    """Ask a running exporter to flush; returns (exit code, one line for the user). A busy
    exporter is asked again until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        code, message, busy = _flush_once(path, timeout, deadline)
        if not busy or time.monotonic() + 0.1 >= deadline:
            return code, message
        time.sleep(0.1)


def _flush_once(path: str, timeout: float, deadline: float) -> tuple[int, str, bool]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    with sock:
        try:
            _connect(sock, path, deadline)
        except (FileNotFoundError, ConnectionRefusedError):
            return 0, "exporter not running; nothing to flush", False
        except BlockingIOError:
            return 1, f"the exporter took no connection within {timeout:g}s", False
        except OSError as exc:
            return 1, f"cannot reach the exporter at {path}: {exc.strerror or exc}", False
        try:
            sock.sendall(b"flush\n")
            answer = _read_line(sock).decode(errors="replace").strip()
        except TimeoutError:
            return 1, f"the exporter did not confirm the flush within {timeout:g}s", False
        except (BrokenPipeError, ConnectionResetError) as exc:
            # Closed on us unread: an exporter with every connection busy does that.
            return 1, f"flush interrupted: {exc.strerror or exc}", True
        except OSError as exc:
            return 1, f"flush interrupted: {exc.strerror or exc}", False
    if answer.startswith("ok "):
        return 0, f"token flushed to {answer[3:]}", False
    if not answer:
        return 1, "the exporter closed the control socket without confirming the flush", False
    return 1, f"flush failed: {answer.removeprefix('error ')}", answer == BUSY.decode().strip()


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
            _connect(sock, path, time.monotonic() + timeout)
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
            _connect(sock, path, time.monotonic() + 5.0)
        except OSError:
            return False
    return True
