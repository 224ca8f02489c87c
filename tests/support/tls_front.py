"""An https:// front for a plain-HTTP test server on loopback: TLS with a given key and
certificate, each connection forwarded to the server's port. Netatmo is reached over
https:// in real life; the simulated cloud speaks plain HTTP.

`tls_front` listens for TLS itself; `tls_proxy` is an HTTP proxy (`HTTPS_PROXY`) that takes
any `CONNECT host:443` and answers it with the certificate: a program that calls a fixed
https:// address (the Go exporter calls https://api.netatmo.net) reaches the test server
through it, trusting the certificate through `SSL_CERT_FILE`."""

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


MAX_CONNECT = 8192
"""The most a CONNECT request may take, head and headers."""


def _connected(client: socket.socket) -> bool:
    """Reads a `CONNECT` request's head and answers 200; False for anything else."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = client.recv(1024)
        if not chunk or len(head) > MAX_CONNECT:
            return False
        head += chunk
    if not head.startswith(b"CONNECT "):
        client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        return False
    client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
    return True


def _forward(client: socket.socket, context: ssl.SSLContext, port: int,
             slots: threading.Semaphore, proxy: bool) -> None:
    try:
        with suppress(OSError), client:
            client.settimeout(10.0)
            if proxy and not _connected(client):
                return
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
    with _front(port, key, cert, proxy=False) as address:
        yield f"https://{address}"


@contextmanager
def tls_proxy(port: int, key: Path, cert: Path) -> Iterator[str]:
    """Yields `http://127.0.0.1:PORT`, a proxy whose every tunnel ends in TLS with `cert`
    and goes on to `127.0.0.1:port`."""
    with _front(port, key, cert, proxy=True) as address:
        yield f"http://{address}"


@contextmanager
def _front(port: int, key: Path, cert: Path, proxy: bool) -> Iterator[str]:
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
            threading.Thread(target=_forward, args=(client, context, port, slots, proxy),
                             daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stopping.set()
        with suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        acceptor.join(5.0)
