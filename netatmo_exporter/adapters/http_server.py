"""The HTTP side: a threaded stdlib WSGI server, `/metrics` beside the bottle app, and a
cache so that scrapes between two refreshes reuse the exposition the first one built."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Hashable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
MAX_CACHED_VARIANTS = 16


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


class _QuietHandler(WSGIRequestHandler):
    # One write per answer and no Nagle: avoids 40 ms stalls with delayed ACKs.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


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

    server = Server(address, _QuietHandler)
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
