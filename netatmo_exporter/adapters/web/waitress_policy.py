"""The strict request policy, as subclasses of waitress internals.

waitress parses and answers; these hooks add our policy on top (http_server says what it
is). Each overrides a method waitress calls by name, so a renamed or bypassed hook would
switch a protection off in silence: tests/robustness/test_waitress_contract.py feeds raw
bytes through each one and fails loudly when a hook is no longer called. pyproject.toml
pins the waitress range those tests have passed on.

- StrictParser.parse_header: framing, version, Host, target and body policy;
- ProtocolErrorTask.execute: the server's own error answers;
- AppTask.get_environment / build_response_header / write: HEAD without a body;
- StrictChannel.__init__ / received: each request's deadline, each address's share;
- StrictServer.handle_accept: several connections per loop turn;
- StrictServer.maintenance: closes connections past their deadline;
- HTTPChannel.del_channel / handle_close: a connection parked out of the loop, then closed;
- TcpWSGIServer(_sock=..., bind_socket=False): serves the socket http_server bound.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import Error

from netatmo_exporter.adapters.lan.clients import client_key
from netatmo_exporter.adapters.lan.refusals import RefusalCounts
from netatmo_exporter.adapters.web.http_policy import BODY_LIMITS, SECURITY_HEADERS, parse_host
from netatmo_exporter.adapters.web.wsgi import PLAIN_TEXT

FRAMING_HEADERS = frozenset({b"content-length", b"transfer-encoding"})
# Names and URLs: ASCII by their grammar (RFC 9110 7.2, RFC 6454 7, RFC 3986). Any other
# byte is refused here, so no page ever decodes one.
ASCII_ONLY_HEADERS = ("HOST", "ORIGIN", "REFERER")
DEFAULT_REQUEST_TIMEOUT = 10.0


class _BodyRefused(Error):  # type: ignore[misc]
    code = 413
    reason = "Content Too Large"


class StrictParser(HTTPRequestParser):  # type: ignore[misc]
    """waitress's parser, refusing what a strict proxy in front could read differently."""

    chunked: bool
    content_length: int
    expect_continue: bool

    def parse_header(self, header_plus: bytes) -> None:
        _check_field_names(header_plus)
        super().parse_header(header_plus)
        if self.version not in ("1.0", "1.1"):
            raise ParsingError("unsupported HTTP version")
        if self.version == "1.1" and "HOST" not in self.headers:
            raise ParsingError("Host is required in HTTP/1.1")
        if not _visible_ascii(self.request_uri):
            raise ParsingError("control or non-ASCII byte in the request target")
        if "%" in self.request_uri.partition("?")[0]:
            raise ParsingError("percent-encoded path")
        for name in ASCII_ONLY_HEADERS:
            value = self.headers.get(name)
            if value is not None and not _visible_ascii(value):
                raise ParsingError(f"control or non-ASCII byte in {name.title()}")
        if self.proxy_netloc and not _same_host(self.proxy_netloc, self.headers.get("HOST", "")):
            raise ParsingError("absolute-form target names another host")
        if self.chunked or self.content_length:
            limit = BODY_LIMITS.get((self.command, self.path), 0)
            if not limit or self.content_length > limit:
                # Drop the body unread: waitress then answers the error and closes.
                self.error = _BodyRefused("this address takes no request body" if not limit
                                          else "the request body is too large")
                self.body_rcv = None
                self.chunked = False
                self.content_length = 0
                self.expect_continue = False


def _visible_ascii(text: str) -> bool:
    return all("!" <= char <= "~" for char in text)


def _same_host(target_netloc: str, host_header: str) -> bool:
    target, host = parse_host(target_netloc), parse_host(host_header)
    return target is not None and target == host


def _check_field_names(header_plus: bytes) -> None:
    """Framing headers must be unambiguous: one spelling, one occurrence, not both kinds,
    no folded lines.

    waitress silently drops fields whose name has an underscore and joins repeated fields
    with commas; a proxy may do neither, so the framing ones are refused here instead.
    """
    seen: list[bytes] = []
    for line in header_plus.split(b"\r\n")[1:]:
        if line[:1] in (b" ", b"\t"):
            raise ParsingError("obsolete line folding")
        name = line.partition(b":")[0].strip(b" \t").lower()
        dashed = name.replace(b"_", b"-")
        if dashed in FRAMING_HEADERS or dashed == b"host":
            if name != dashed or dashed in seen:
                raise ParsingError("ambiguous framing")
            seen.append(dashed)
    if len(set(seen) & FRAMING_HEADERS) > 1:
        raise ParsingError("both Content-Length and Transfer-Encoding")


class ProtocolErrorTask(ErrorTask):  # type: ignore[misc]
    """The server's own error answers: the status, the security headers, nothing echoed."""

    def execute(self) -> None:
        error = self.request.error
        self.status = f"{error.code} {error.reason}"
        body = f"{self.status}\n".encode()
        self.response_headers.extend([("Content-Type", PLAIN_TEXT),
                                      ("Connection", "close"), *SECURITY_HEADERS])
        self.close_on_finish = True
        self.content_length = len(body)
        self.write(body)


class AppTask(WSGITask):  # type: ignore[misc]
    """HEAD is answered with GET's status and headers, Content-Length included, and no
    body (RFC 9110 9.3.2).

    The apps are asked for GET: prometheus_client knows no HEAD, and bottle's empty HEAD
    body under GET's Content-Length makes waitress 2 close the connection. waitress itself
    leaves a body out only for 1xx, 204 and 304: left alone it would send GET's body after
    the HEAD answer, where a kept-alive client reads it as the start of the next answer.
    """

    def get_environment(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environment()
        if self.request.command == "HEAD":
            environ["REQUEST_METHOD"] = "GET"
            environ.pop("wsgi.file_wrapper", None)  # a wrapped file is sent past write()
        return environ

    def build_response_header(self) -> bytes:
        header: bytes = super().build_response_header()
        if self.request.command == "HEAD":
            self.chunked_response = False  # no body: no chunks, no last chunk either
        return header

    def write(self, data: bytes) -> None:
        if self.request.command == "HEAD" and data:
            super().write(b"")  # the headers, once
            # Counted as sent, so waitress sees GET's length honoured and keeps the
            # connection open.
            self.content_bytes_written += len(data)
            return
        super().write(data)


class StrictChannel(HTTPChannel):  # type: ignore[misc]
    """A connection with a deadline for each request, from its first byte to its last."""

    parser_class = StrictParser
    task_class = AppTask
    error_task_class = ProtocolErrorTask

    server: StrictServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_deadline: float | None = time.monotonic() + self.server.request_timeout
        self.kept_alive = False  # has had a whole request: a pool's connection, not a probe
        self.server.admit(self)

    def received(self, data: bytes) -> bool:
        if self.request_deadline is None:
            self.request_deadline = time.monotonic() + self.server.request_timeout
        result: bool = super().received(data)
        if self.requests:
            self.kept_alive = True
        if self.request is None:
            self.request_deadline = None
        return result


class StrictServer(TcpWSGIServer):  # type: ignore[misc]
    """Connections past their deadline closed, and each client address kept to its share
    of the served connections (http_server.ServerLimits sets the figures)."""

    channel_class = StrictChannel
    request_timeout = DEFAULT_REQUEST_TIMEOUT
    per_address = 64
    parked_limit = 2048
    refusals: RefusalCounts | None = None
    # waitress accepts one connection per loop turn; a host reconnecting as fast as its
    # connections are closed would then keep everyone else's queued behind its own.
    accepts_per_turn = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.by_address: dict[str, list[StrictChannel]] = {}
        self.parked: deque[tuple[float, StrictChannel]] = deque()
        self.accepted = 0
        super().__init__(*args, **kwargs)

    def handle_accept(self) -> None:
        for _ in range(self.accepts_per_turn):
            before = self.accepted
            super().handle_accept()
            if self.accepted == before or len(self._map) >= self.adj.connection_limit:
                break

    def admit(self, channel: StrictChannel) -> None:
        """Called for each new connection, to keep its address within its share.

        Closing connections of an address that reconnects at once (as a hostile one does)
        would only make it reconnect at once, thousands of times a second; a parked
        connection costs a descriptor, no polling and no share, until its deadline."""
        self.accepted += 1
        address = channel.addr[0] if isinstance(channel.addr, tuple) else str(channel.addr)
        key = client_key(address)
        held = [old for old in self.by_address.get(key, ()) if old.connected and
                not old.will_close]
        self.by_address[key] = held
        if len(held) >= self.per_address:
            if self.refusals is not None:
                self.refusals.add("connection_per_address")
            spare = next((old for old in held if old.kept_alive and old.request is None
                          and not old.requests), None)
            if spare is None:
                self._park(channel)
                return
            held.remove(spare)
            spare.will_close = True
        held.append(channel)

    def _park(self, channel: StrictChannel) -> None:
        channel.del_channel()  # out of the poll map and of waitress's count
        self.parked.append((time.monotonic() + self.request_timeout, channel))
        while len(self.parked) > self.parked_limit:
            self.parked.popleft()[1].handle_close()

    def close_parked(self, now: float = float("inf")) -> None:
        while self.parked and self.parked[0][0] <= now:
            self.parked.popleft()[1].handle_close()

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        late = time.monotonic()
        for channel in list(self.active_channels.values()):
            deadline = getattr(channel, "request_deadline", None)
            if deadline is not None and deadline < late and not channel.requests:
                channel.will_close = True
        for key, held in list(self.by_address.items()):
            held[:] = [channel for channel in held if channel.connected]
            if not held:
                del self.by_address[key]
        self.close_parked(late)
