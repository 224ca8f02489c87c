"""The other side of remote write, for tests: a snappy block decoder and a protobuf
`WriteRequest` decoder written from the format descriptions (not from the encoder), and
`FakeReceiver`, an HTTP server on 127.0.0.1 that decodes what it is sent and answers as
told, for the answers real receivers are hard to make give (401, 413, 429, 5xx).
"""

from __future__ import annotations

import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

Decoded = list[tuple[dict[str, str], list[tuple[int, float]]]]
"""Each `TimeSeries`: its labels and its samples (milliseconds, value), as sent."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def snappy_decompress(data: bytes) -> bytes:
    size, at = _varint(data, 0)
    out = bytearray()
    while at < len(data):
        tag = data[at]
        at += 1
        kind = tag & 3
        if kind == 0:
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(data[at:at + extra], "little")
                at += extra
            length += 1
            out += data[at:at + length]
            at += length
            continue
        if kind == 1:
            length = 4 + ((tag >> 2) & 7)
            offset = (tag >> 5) << 8 | data[at]
            at += 1
        elif kind == 2:
            length = 1 + (tag >> 2)
            offset = int.from_bytes(data[at:at + 2], "little")
            at += 2
        else:
            length = 1 + (tag >> 2)
            offset = int.from_bytes(data[at:at + 4], "little")
            at += 4
        assert 0 < offset <= len(out), f"copy offset {offset} outside {len(out)} bytes"
        for _ in range(length):  # byte by byte: a copy may overlap what it writes
            out.append(out[-offset])
    assert len(out) == size, f"decoded {len(out)} bytes, the preamble says {size}"
    return bytes(out)


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            yield number, wire, value
        elif wire == 1:
            yield number, wire, data[at:at + 8]
            at += 8
        elif wire == 2:
            length, at = _varint(data, at)
            yield number, wire, data[at:at + length]
            at += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")


def decode_write_request(body: bytes) -> Decoded:
    series: Decoded = []
    for number, _, payload in _fields(body):
        assert number == 1 and isinstance(payload, bytes)
        labels: dict[str, str] = {}
        samples: list[tuple[int, float]] = []
        for inner, _, part in _fields(payload):
            assert isinstance(part, bytes)
            pairs = {n: v for n, _, v in _fields(part)}
            if inner == 1:
                name, value = pairs[1], pairs[2]
                assert isinstance(name, bytes) and isinstance(value, bytes)
                labels[name.decode()] = value.decode()
            else:
                raw, millis = pairs[1], pairs[2]
                assert isinstance(raw, bytes) and isinstance(millis, int)
                if millis >= 1 << 63:
                    millis -= 1 << 64
                samples.append((millis, struct.unpack("<d", raw)[0]))
        series.append((labels, samples))
    return series


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    series: Decoded
    status: int
    """What the fake answered."""


@dataclass
class FakeReceiver:
    """Answers each request with the next of `answers` (status, headers, body), then 204
    once they are used up; keeps every request it was sent in `received`."""

    url: str = ""
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            return self.answers.pop(0) if self.answers else (204, {}, b"")

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]


@contextmanager
def fake_receiver(path: str = "/api/v1/write", tls: tuple[Path, Path] | None = None
                  ) -> Iterator[FakeReceiver]:
    """Over HTTPS with `tls` (key, certificate)."""
    state = FakeReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, headers, text = state.answer()
            if self.path == path:
                with state.lock:
                    state.received.append(Received(
                        dict(self.headers.items()), body,
                        decode_write_request(snappy_decompress(body)), status))
            else:
                status, headers, text = 404, {}, b"404 page not found\n"
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile=tls[1], keyfile=tls[0])
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
