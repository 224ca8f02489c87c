"""An https:// front for a plain-HTTP test server on loopback: TLS with a given key and
certificate, each connection forwarded to the server's port. Netatmo is reached over
https:// in real life; the simulated cloud speaks plain HTTP."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

CONNECTIONS = 64
"""At most this many connections forwarded at once (a test's own load, bounded)."""


def _pump(source: socket.socket, target: socket.socket) -> None:
    with suppress(OSError):
        while chunk := source.recv(65536):
            target.sendall(chunk)
    with suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _forward(client: socket.socket, context: ssl.SSLContext, port: int,
             slots: threading.Semaphore) -> None:
    try:
        with suppress(OSError), client:
            client.settimeout(10.0)
            with context.wrap_socket(client, server_side=True) as secure, \
                    socket.create_connection(("127.0.0.1", port), timeout=10.0) as plain:
                secure.settimeout(None)
                back = threading.Thread(target=_pump, args=(plain, secure), daemon=True)
                back.start()
                _pump(secure, plain)
                back.join(30.0)
    finally:
        slots.release()


@contextmanager
def tls_front(port: int, key: Path, cert: Path) -> Iterator[str]:
    """Yields `https://127.0.0.1:PORT` forwarding to `127.0.0.1:port`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile=cert, keyfile=key)
    listener = socket.create_server(("127.0.0.1", 0))
    slots = threading.Semaphore(CONNECTIONS)
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if not slots.acquire(timeout=10.0):
                client.close()
                continue
            threading.Thread(target=_forward, args=(client, context, port, slots),
                             daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stopping.set()
        with suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        acceptor.join(5.0)
