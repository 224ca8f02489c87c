"""A unix socket on which the running exporter accepts `flush` from systemd's ExecStop."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable

from netatmo_exporter.domain.errors import TokenFileError
from netatmo_exporter.domain.ports import EventLog

MAX_REQUEST = 64


class ControlSocketServer:
    """Answers `flush\\n` with `ok <path>\\n` once the token is on disk, or `error <why>\\n`."""

    def __init__(self, path: str, flush: Callable[[], str], log: EventLog) -> None:
        self._path = path
        self._flush = flush
        self._log = log
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
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
                    conn.sendall(self._answer(conn.recv(MAX_REQUEST)))

    def _answer(self, request: bytes) -> bytes:
        if request.strip() != b"flush":
            return b"error unknown command\n"
        try:
            path = self._flush()
        except TokenFileError as exc:
            self._log.error("flush_failed", problem=str(exc))
            return f"error {exc}\n".encode()
        self._log.info("flush_requested", token_file=path)
        return f"ok {path}\n".encode()


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
