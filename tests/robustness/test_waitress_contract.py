"""waitress as a contract: every hook of waitress_policy is still called by waitress.

Each hook overrides a method waitress calls by name. If a waitress release renamed or
stopped calling one, the protection it carries would switch off without an error; these
tests feed raw bytes through the parser, a channel and the server loop, and fail when a
hook's effect is missing. They run on bookworm's waitress 2.1.2, trixie's and PyPI's.
"""

from __future__ import annotations

import inspect
import re
import socket
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import version
from typing import Any

import pytest
import waitress
from waitress.parser import HTTPRequestParser

from netatmo_exporter.adapters.web import waitress_policy
from netatmo_exporter.adapters.web.http_policy import SECURITY_HEADERS
from netatmo_exporter.adapters.web.http_server import (
    HTTPServer,
    ServerLimits,
    make_server,
    server_adjustments,
)
from netatmo_exporter.adapters.web.waitress_policy import StrictParser
from tests.support.harness import REPO

BODY = b"0123456789" * 7


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers /sized with Content-Length, /streamed without one (chunked), /method with
    the method the app was asked for."""
    path = environ["PATH_INFO"]
    if path == "/method":
        body = environ["REQUEST_METHOD"].encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/streamed":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([BODY[:30], BODY[30:]])
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    http = make_server("127.0.0.1", 0, _app, ServerLimits(request_timeout=1.0,
                                                          idle_timeout=30.0))
    http.start()
    yield http
    http.shutdown()


def _connect(http: HTTPServer) -> socket.socket:
    host, port = http.server_address[:2]
    return socket.create_connection((host, port), timeout=5.0)


def _read_until_closed(sock: socket.socket, limit: float = 5.0) -> bytes:
    data = b""
    ends = time.monotonic() + limit
    while time.monotonic() < ends:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_every_hook_overrides_a_method_waitress_still_has() -> None:
    """A hook whose name waitress no longer has would never be called."""
    hooks = {waitress_policy.StrictParser: ["parse_header"],
             waitress_policy.ProtocolErrorTask: ["execute"],
             waitress_policy.AppTask: ["get_environment", "build_response_header", "write"],
             waitress_policy.StrictChannel: ["__init__", "received"],
             waitress_policy.StrictServer: ["__init__", "handle_accept", "maintenance"]}
    ours = {"admit", "_park", "close_parked", "per_address", "parked_limit", "refusals",
            "accepts_per_turn"}
    for hook_class, names in hooks.items():
        base = hook_class.__mro__[1]
        assert base.__module__.startswith("waitress."), hook_class
        own = {name for name, _ in inspect.getmembers(hook_class) if name in vars(hook_class)}
        assert own - {"__doc__", "__module__", "__qualname__", "__annotations__",
                      "__firstlineno__", "__static_attributes__", "parser_class",
                      "task_class", "error_task_class", "channel_class", "request_timeout",
                      "server", *ours} == set(names), hook_class
        for name in names:
            assert callable(getattr(base, name, None)), f"waitress has no {base}.{name}"
    channel_attributes = vars(waitress.channel.HTTPChannel)
    for attribute in ("parser_class", "task_class", "error_task_class"):
        assert attribute in channel_attributes
    assert "channel_class" in vars(waitress.server.BaseWSGIServer)
    # Parking takes a connection out of the loop and closes it later by these.
    for name in ("del_channel", "handle_close"):
        assert callable(getattr(waitress.channel.HTTPChannel, name, None)), name
    parameters = inspect.signature(waitress.server.TcpWSGIServer.__init__).parameters
    assert {"_sock", "bind_socket", "sockinfo", "map", "adj"} <= set(parameters)


@pytest.mark.parametrize(("raw", "reason"), [
    (b"GET /%6detrics HTTP/1.1\r\nHost: x\r\n\r\n", "percent-encoded path"),
    (b"GET / HTTP/1.1\r\n\r\n", "Host is required in HTTP/1.1"),
    (b"GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
     "absolute-form target names another host"),
    (b"POST /auth/settoken HTTP/1.1\r\nHost: x\r\nContent_Length: 5\r\n\r\nhello",
     "ambiguous framing"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n folded\r\n\r\n", "obsolete line folding"),
    (b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", "non-ASCII byte in Host"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nReferer: http://x/\xff\r\n\r\n",
     "non-ASCII byte in Referer"),
    (b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", "byte in the request target"),
])
def test_the_parser_hook_refuses_what_waitress_alone_accepts(raw: bytes, reason: str) -> None:
    adjustments = server_adjustments(ServerLimits())
    plain = HTTPRequestParser(adjustments)
    plain.received(raw)
    strict = StrictParser(adjustments)
    strict.received(raw)

    assert plain.error is None, "waitress refuses this itself now: pick another case"
    assert strict.error is not None and strict.error.code == 400
    assert reason in strict.error.body


def test_the_parser_hook_refuses_a_body_before_buffering_it() -> None:
    strict = StrictParser(server_adjustments(ServerLimits()))
    strict.received(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")

    assert strict.error is not None and strict.error.code == 413
    assert strict.body_rcv is None and strict.completed


def test_the_error_task_hook_answers_with_our_headers_and_closes(server: HTTPServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /%6detrics HTTP/1.1\r\nHost: x\r\nX-Echo: <script>\r\n\r\n")
        answer = _read_until_closed(sock)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    for name, value in SECURITY_HEADERS:
        assert f"{name}: {value}".encode() in head
    assert b"Connection: close" in head
    assert body == b"400 Bad Request\n"


def test_the_channel_and_server_hooks_close_a_trickling_request_at_its_deadline(
    server: HTTPServer,
) -> None:
    """A byte every 0.2 s keeps waitress's own idle timeout away: only the request
    deadline (1 s here; the loop checks every second) can close this connection."""
    started = time.monotonic()
    closed_after = None
    with _connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.2)
        for _ in range(50):
            try:
                sock.sendall(b"X: y\r\n")
                if sock.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "the request deadline no longer fires"
    assert 0.9 < closed_after < 4.0


def test_the_channel_hook_takes_a_kept_alive_connection_off_the_deadline_between_requests(
    server: HTTPServer,
) -> None:
    """The deadline is per request: idle after an answer, a connection waits for the
    idle timeout (30 s here), not the request deadline (1 s)."""
    with _connect(server) as sock:
        sock.sendall(b"GET /method HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b"\r\n\r\nGET"):
            chunk = sock.recv(65536)
            assert chunk, "closed before the first answer"
            first += chunk
        time.sleep(2.5)  # past the deadline and a maintenance pass of the loop
        sock.sendall(b"GET /method HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        second = _read_until_closed(sock)

    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert second.startswith(b"HTTP/1.1 200 OK\r\n"), "closed between requests"


def test_the_server_serves_the_socket_it_was_handed(server: HTTPServer) -> None:
    assert server.server_address == server.socket.getsockname()
    with _connect(server) as sock:
        sock.sendall(b"GET /method HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _read_until_closed(sock).endswith(b"\r\n\r\nGET")


@pytest.mark.parametrize("path", ["/sized", "/streamed", "/method"])
def test_head_then_get_on_one_connection_the_raw_bytes(server: HTTPServer, path: str
                                                       ) -> None:
    """The task hook: HEAD gets GET's headers and no byte of body, so the next answer on
    the kept-alive connection starts right after HEAD's blank line."""
    raw = (f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"
           f"GET /method HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode()
    with _connect(server) as sock:
        sock.sendall(raw)
        answer = _read_until_closed(sock)

    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    if path == "/streamed":
        # Without a length waitress frames GET's body in chunks and closes after it: HEAD
        # sends neither a chunk nor the last chunk, and the connection is closed.
        assert b"Transfer-Encoding: chunked" in head
        assert rest == b""
        return
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest[:80]
    assert rest.endswith(b"\r\n\r\nGET")
    if path == "/sized":
        assert f"Content-Length: {len(BODY)}".encode() in head
    if path == "/method":
        assert b"Content-Length: 3" in head  # the app was asked for GET


def test_the_accept_and_channel_hooks_keep_an_address_to_its_share() -> None:
    """Two served connections per address here: a third from the same address is parked
    (held unread, outside the loop, closed at its 1 s deadline), while another address's
    connection is served at once; several queued connections are accepted in one turn."""
    http = make_server("127.0.0.1", 0, _app, ServerLimits(
        request_timeout=1.0, idle_timeout=30.0, connections_per_address=2))
    http.start()
    port = http.server_address[1]
    crowd = [socket.create_connection(("127.0.0.1", port), timeout=5.0,
                                      source_address=("127.0.0.2", 0)) for _ in range(5)]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5.0,
                                      source_address=("127.0.0.3", 0)) as other:
            other.sendall(b"GET /method HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            served = _read_until_closed(other)
        crowd[-1].sendall(b"GET /method HTTP/1.1\r\nHost: x\r\n\r\n")
        crowd[-1].settimeout(3.0)
        try:  # closed at its deadline with our request unread: a reset
            parked_answer = _read_until_closed(crowd[-1], limit=3.0)
        except ConnectionResetError:
            parked_answer = b""
    finally:
        for sock in crowd:
            sock.close()
        http.shutdown()

    assert served.endswith(b"\r\n\r\nGET")
    assert parked_answer == b"", "a parked connection was answered"


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_the_waitress_under_test_is_in_the_pinned_range() -> None:
    """pyproject.toml pins the releases these tests have passed on. A newer waitress fails
    here first: run this file on it, then widen the pin."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (requirement,) = [item for item in project["dependencies"]
                      if item.startswith("waitress")]
    lowest = re.search(r">=\s*([\d.]+)", requirement)
    below = re.search(r"<\s*([\d.]+)", requirement)
    assert lowest is not None and below is not None, requirement

    installed = _release(version("waitress"))

    assert _release(lowest.group(1)) <= installed < _release(below.group(1)), (
        f"waitress {version('waitress')} is outside {requirement}")
