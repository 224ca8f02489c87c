"""The HTTP side: a threaded stdlib WSGI server, `/metrics` beside the bottle app, and a
cache so that scrapes between two refreshes reuse the exposition the first one built."""

from __future__ import annotations

import io
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable, Hashable, Iterable
from email.utils import formatdate
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import unquote
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
MAX_CACHED_VARIANTS = 16
IDLE_TIMEOUT = 120.0
MAX_LINE = 8192
MAX_HEADERS = 100
MAX_BODY = 1024 * 1024
# Answers the server gives itself, before any app sees the request, are hardened too.
PROTOCOL_ERROR_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
MAX_CONNECTIONS = 256
TOO_MANY_CONNECTIONS = (
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    + "".join(f"{name}: {value}\r\n" for name, value in PROTOCOL_ERROR_HEADERS)
    + "Retry-After: 1\r\nContent-Length: 25\r\nConnection: close\r\n\r\n"
    "too many open connections"
).encode()


class CachedMetricsApp:
    """prometheus_client's WSGI app (content negotiation, gzip, `name[]` filters), answering
    from a cache while `state_key()` is unchanged. The key folds in every state version and
    the current second, so time-derived values (data age, token validity) stay exact."""

    def __init__(self, registry: CollectorRegistry, state_key: Callable[[], Hashable]) -> None:
        self._app: WSGIApp = make_wsgi_app(registry)
        self._state_key = state_key
        self._generation: tuple[Hashable, dict[Hashable, tuple[str, list[tuple[str, str]],
                                                            bytes]]] = (None, {})

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        key = self._state_key()
        generation_key, answers = self._generation
        if generation_key != key:
            answers = {}
            self._generation = (key, answers)
        variant = (
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("HTTP_ACCEPT", ""),
            "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""),
            environ.get("QUERY_STRING", ""),
        )
        answer = answers.get(variant)
        if answer is None:
            answer = self._render(environ)
            if len(answers) < MAX_CACHED_VARIANTS:
                answers[variant] = answer
        status, headers, body = answer
        start_response(status, list(headers))
        return [body]

    def _render(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            captured.extend((status, headers))

        body = b"".join(self._app(environ, capture))
        return captured[0], captured[1], body


def dispatch(metrics_app: WSGIApp, web_app: WSGIApp) -> WSGIApp:
    """`/metrics` goes straight to prometheus_client, outside bottle's hooks."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/metrics":
            return metrics_app(environ, start_response)
        return web_app(environ, start_response)

    return app


class _Request:
    __slots__ = ("body", "environ", "keep_alive", "method", "version")

    def __init__(self, method: str, version: str, environ: dict[str, Any], keep_alive: bool,
                 body: bytes) -> None:
        self.method = method
        self.version = version
        self.environ = environ
        self.keep_alive = keep_alive
        self.body = body


class _BadRequest(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class _Handler(socketserver.StreamRequestHandler):
    """HTTP/1.1 with keep-alive in front of a WSGI app, one write per answer.

    wsgiref answers one request per connection in HTTP/1.0 and costs more per request
    than rendering a cached exposition; Prometheus keeps its connection open, so a
    scrape here is a read, a dict lookup and one `sendall`. Request bodies are read whole
    (forms are small), so every answer carries a Content-Length and can be pipelined.
    """

    # No Nagle: with delayed ACKs it adds about 40 ms to answers on kept-alive connections.
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT
    server: ThreadingWSGIServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def handle(self) -> None:
        try:
            while True:
                try:
                    request = self._read_request()
                except _BadRequest as bad:
                    self._send(bad.status, [("Content-Type", "text/plain; charset=utf-8"),
                                            *PROTOCOL_ERROR_HEADERS],
                               bad.status.encode() + b"\n", "HTTP/1.1", False, False)
                    return
                if request is None or not self._answer(request):
                    return
        except (OSError, ValueError):  # the peer went away or the server is closing
            return

    def _read_request(self) -> _Request | None:
        line = self.rfile.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):  # tolerated between requests (RFC 9112 2.2)
            line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        if len(line) > MAX_LINE:
            raise _BadRequest("414 URI Too Long")
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest("400 Bad Request")
        method, target, version = parts
        environ = dict(self.server.base_environ)
        headers = self._read_headers(environ)
        connection = environ.get("HTTP_CONNECTION", "").lower()
        keep_alive = ("close" not in connection if version == "HTTP/1.1"
                      else "keep-alive" in connection)
        if target.startswith(("http://", "https://")):
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        path, _, query = target.partition("?")
        environ.update({
            "REQUEST_METHOD": method,
            "SERVER_PROTOCOL": version,
            "PATH_INFO": unquote(path, "iso-8859-1"),
            "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0] if self.client_address else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        })
        body = b""
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            keep_alive = False  # the app reads (or refuses) the body; no reuse after that
            environ["wsgi.input"] = self.rfile
            return _Request(method, version, environ, keep_alive, body)
        length_text = environ.get("CONTENT_LENGTH", "")
        if length_text:
            if not length_text.isdigit():
                raise _BadRequest("400 Bad Request")
            length = int(length_text)
            if length > MAX_BODY:
                raise _BadRequest("413 Content Too Large")
            if "100-continue" in headers.get("expect", "").lower():
                self.connection.sendall(f"{version} 100 Continue\r\n\r\n".encode())
            body = self.rfile.read(length)
            if len(body) != length:
                return None
        environ["wsgi.input"] = io.BytesIO(body)
        return _Request(method, version, environ, keep_alive, body)

    def _read_headers(self, environ: dict[str, Any]) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                raise _BadRequest("431 Request Header Fields Too Large")
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or not name or name != name.strip():
                raise _BadRequest("400 Bad Request")
            name, value = name.lower(), value.strip()
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                key = "HTTP_" + key
                environ[key] = f"{environ[key]},{value}" if key in environ else value
            headers[name] = value
        raise _BadRequest("431 Request Header Fields Too Large")

    def _answer(self, request: _Request) -> bool:
        captured: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            captured[:] = [status, headers]
            return lambda _data: None

        app = self.server.get_app()
        assert app is not None
        try:
            result = app(request.environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:  # a broken page must not take the connection's thread down
            traceback.print_exc(file=sys.stderr)
            captured = ["500 Internal Server Error", [("Content-Type", "text/plain")]]
            body, request.keep_alive = b"A server error occurred.\n", False
        status, headers = captured
        self._send(status, headers, body, request.version, request.keep_alive,
                   request.method == "HEAD")
        return request.keep_alive

    def _send(self, status: str, headers: list[tuple[str, str]], body: bytes, version: str,
              keep_alive: bool, head_only: bool) -> None:
        lines = [f"{version} {status}", f"Date: {_http_date()}"]
        has_length = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == "connection":
                continue
            has_length = has_length or lowered == "content-length"
            lines.append(f"{name}: {value}")
        code = status[:3]
        if not has_length and code not in ("204", "304") and not code.startswith("1"):
            lines.append(f"Content-Length: {len(body)}")
        if not keep_alive:
            lines.append("Connection: close")
        elif version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.connection.sendall(head if head_only else head + body)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per connection, at most `max_connections` at a time: beyond that a
    connection gets a 503 at once, so idle sockets from the LAN cannot pile up threads."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True
    max_connections = MAX_CONNECTIONS

    def __init__(self, address: tuple[Any, ...], handler: type[Any]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._active = 0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
        if full:
            try:
                request.sendall(TOO_MANY_CONNECTIONS)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._release_slot()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release_slot()

    def _release_slot(self) -> None:
        with self._connections_lock:
            self._active -= 1

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def server_close(self) -> None:
        """Also end kept-alive connections, so no thread waits on an idle client."""
        super().server_close()
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_server(host: str, port: int, app: WSGIApp) -> ThreadingWSGIServer:
    """Listen on `host:port`; an empty host means every interface, IPv6 and IPv4."""
    family, address = _resolve(host, port)

    class Server(ThreadingWSGIServer):
        address_family = family

        def server_bind(self) -> None:
            if family == socket.AF_INET6 and not host:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            # HTTPServer.server_bind would resolve our own name (socket.getfqdn), which
            # hangs on a box without DNS; the name is only cosmetic in WSGI environ.
            socketserver.TCPServer.server_bind(self)
            self.server_name = host or "localhost"
            self.server_port = self.socket.getsockname()[1]
            self.setup_environ()

    server = Server(address, _Handler)
    server.set_app(app)
    return server


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    if not host:
        if socket.has_ipv6:
            try:
                probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                probe.close()
                return socket.AF_INET6, ("::", port)
            except OSError:
                pass
        return socket.AF_INET, ("0.0.0.0", port)
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return family, address


def serve_in_thread(server: ThreadingWSGIServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="http", daemon=True)
    thread.start()
    return thread
