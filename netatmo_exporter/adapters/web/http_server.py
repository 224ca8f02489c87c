"""The HTTP side: waitress serves the WSGI apps, with a stricter request policy on top.

waitress does all the HTTP parsing and connection handling (one asynchronous loop for the
sockets, a few threads for the apps), so idle and slow clients cost a socket each, not a
thread. What is ours is policy, applied to what waitress has parsed:

- ambiguous framing is refused with 400 and a closed connection (RFC 9112 6.1, 6.3), as
  are an HTTP/1.1 request without exactly one `Host`, a version other than 1.0/1.1 and a
  percent-encoded path (no page of ours has one; `/%6detrics` is not `/metrics` here);
- only the form that takes a body gets one: any other request with a body is refused
  after its headers, before a byte of the body is buffered;
- a request must arrive whole within a deadline from its first byte (or from the
  connection's opening), and a kept-alive connection is closed after an idle time;
- the server's own error answers carry the security headers and echo nothing;
- HEAD is answered with GET's headers and no body.

The hooks into waitress that do this are in waitress_policy. `/metrics` is
prometheus_client's WSGI app behind a cache, beside the bottle pages.
"""

from __future__ import annotations

import resource
import socket
import sys
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app
from waitress import wasyncore
from waitress.adjustments import Adjustments

from netatmo_exporter.adapters.lan.refusals import RefusalCounts
from netatmo_exporter.adapters.system.logging import raised_at
from netatmo_exporter.adapters.web.http_policy import MAX_BODY_BYTES, ROUTES, SECURITY_HEADERS
from netatmo_exporter.adapters.web.waitress_policy import DEFAULT_REQUEST_TIMEOUT, StrictServer
from netatmo_exporter.adapters.web.wsgi import WSGIApp, plain_answer
from netatmo_exporter.domain.ports import EventLog

MAX_CACHED_VARIANTS = 16
MAX_HEADER_BYTES = 16384


@dataclass(frozen=True)
class ServerLimits:
    """What one connection and all of them together may take. Four threads serve a scrape
    at a time each; sockets cost no thread while they wait."""

    threads: int = 4
    # From a request's first byte (or the accept) to its last.
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    idle_timeout: float = 60.0  # a kept-alive connection between requests
    connection_limit: int = 1000  # beyond it, new connections wait in the listen backlog
    # One address's share of the served connections (a browser opens about six). Beyond
    # it, the address's oldest kept-alive idle connection is closed to make room, or else
    # the new one is parked: held unread, outside the share, until its request deadline.
    connections_per_address: int = 64
    parked_limit: int = 2048  # beyond it, the longest parked connection is closed


class CachedMetricsApp:
    """prometheus_client's WSGI app (content negotiation, gzip, `name[]` filters), answering
    from a cache while `state_key()` is unchanged. The key folds in every state generation and
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


def dispatch(outside_bottle: dict[str, WSGIApp], web_app: WSGIApp) -> WSGIApp:
    """The routes the table keeps outside bottle (`/metrics`: prometheus_client, without
    bottle's hooks) go to their own app, keyed by route name; every other path to bottle.
    Such a path asked with another method is refused with 405, as bottle refuses its own.
    The apps never see HEAD: the server asks them for GET and sends no body (AppTask)."""
    direct = {(route.method, route.path): outside_bottle[route.name]
              for route in ROUTES if route.outside_bottle}
    allowed: dict[str, list[str]] = {}
    for method, path in direct:
        allowed.setdefault(path, []).extend(["GET", "HEAD"] if method == "GET" else [method])

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        target = direct.get((environ.get("REQUEST_METHOD", ""), path))
        if target is not None:
            return target(environ, start_response)
        if path in allowed:
            return plain_answer(start_response, "405 Method Not Allowed",
                                headers=[("Allow", ", ".join(allowed[path]))])
        return web_app(environ, start_response)

    return app


class _DiscardedOutput:
    """`wsgi.errors`: bottle prints a raw traceback there on any error in a page. The
    page's error handler logs one structured line instead, so this keeps nothing."""

    def write(self, text: str) -> int:
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        pass

    def flush(self) -> None:
        pass


_DISCARDED = _DiscardedOutput()


def contain_errors(app: WSGIApp, log: EventLog | None) -> WSGIApp:
    """The outermost app: an unexpected exception becomes one structured log line and a
    plain 500, never a traceback in the log (waitress would print one)."""

    def contained(environ: dict[str, Any], start_response: Callable[..., Any]
                  ) -> Iterable[bytes]:
        environ["wsgi.errors"] = _DISCARDED
        try:
            return app(environ, start_response)
        except Exception as exc:
            if log is not None:
                log.error("web_error", path=environ.get("PATH_INFO", ""),
                          error=type(exc).__name__, at=raised_at(exc))
            return plain_answer(start_response, "500 Internal Server Error",
                                headers=SECURITY_HEADERS, exc_info=sys.exc_info())

    return contained


def server_adjustments(limits: ServerLimits) -> Adjustments:
    return Adjustments(
        threads=limits.threads,
        connection_limit=limits.connection_limit,
        backlog=1024,
        channel_timeout=limits.idle_timeout,
        cleanup_interval=1,
        max_request_header_size=MAX_HEADER_BYTES,
        max_request_body_size=MAX_BODY_BYTES + 1,
        channel_request_lookahead=0,
        asyncore_use_poll=True,  # select() cannot watch sockets past number 1023
        ident="",
        expose_tracebacks=False,
        clear_untrusted_proxy_headers=True,  # bottle would trust X-Forwarded-* otherwise
        log_socket_errors=False,
    )


class HTTPServer:
    """The exporter's listening socket and waitress around it; start, then shut down."""

    def __init__(self, sock: socket.socket, app: WSGIApp, limits: ServerLimits,
                 log: EventLog | None = None, refusals: RefusalCounts | None = None) -> None:
        adjustments = server_adjustments(limits)
        self.socket = sock
        self._map: dict[int, Any] = {}
        self._server = StrictServer(contain_errors(app, log), map=self._map, _sock=sock,
                                    adj=adjustments, bind_socket=False,
                                    sockinfo=(sock.family, sock.type, sock.proto,
                                              sock.getsockname()))
        self._server.request_timeout = limits.request_timeout
        self._server.per_address = limits.connections_per_address
        self._server.parked_limit = limits.parked_limit
        self._server.refusals = refusals
        self.server_address: tuple[Any, ...] = sock.getsockname()
        self._thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        self._thread.start()
        return self._thread

    def shutdown(self) -> None:
        """Stop listening, close every connection and end the app threads; the loop's
        wake-up pipe goes last, as app threads use it until they end."""
        trigger = self._server.trigger
        running = self._thread is not None and self._thread.is_alive()
        if running:
            trigger.pull_trigger(lambda: self._close_all(but=trigger))
        else:
            self._close_all(but=trigger)
        self._server.task_dispatcher.shutdown(timeout=5)
        if running:
            try:
                trigger.pull_trigger(trigger.close)
            except OSError:  # already closed: the loop has nothing left to wait on
                pass
            assert self._thread is not None
            self._thread.join(timeout=10.0)
        else:
            trigger.close()

    def _close_all(self, but: Any) -> None:
        self._server.close_parked()
        for dispatcher in list(self._map.values()):
            if dispatcher is self._server:  # its own close() would close the trigger too
                wasyncore.dispatcher.close(dispatcher)
            elif dispatcher is not but:
                dispatcher.close()


def make_server(host: str, port: int, app: WSGIApp, limits: ServerLimits | None = None,
                log: EventLog | None = None, refusals: RefusalCounts | None = None
                ) -> HTTPServer:
    """Listen on `host:port`; an empty host means every interface, IPv6 and IPv4."""
    family, address = _resolve(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if not host else 1)
        sock.bind(address)
        limits = limits or ServerLimits()
        _raise_file_limit(limits.connection_limit + limits.parked_limit + 1024)
        return HTTPServer(sock, app, limits, log, refusals)
    except BaseException:
        sock.close()
        raise


def _raise_file_limit(wanted: int) -> None:
    """Each connection holds a descriptor; the usual soft limit (1024) is too low. Under
    systemd the unit sets it (LimitNOFILE=) and forbids setrlimit, so failing is fine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, ceiling), hard))
        except (OSError, ValueError):
            pass


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
