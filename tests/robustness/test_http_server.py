"""The HTTP/1.1 front: keep-alive, pipelining, HEAD, 100-continue and negotiation, as
Prometheus and browsers use them, over a raw socket."""

from __future__ import annotations

import gzip
import socket
from pathlib import Path

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.robustness.conftest import RunningExporter, StartExporter
from tests.support.harness import seed_token


def _connect(exporter: RunningExporter) -> socket.socket:
    host, port = exporter.app.server.server_address[:2]
    return socket.create_connection((str(host), int(port)), timeout=5.0)


def _read_answer(sock: socket.socket, buffer: bytearray, head_only: bool = False
                 ) -> tuple[str, dict[str, str], bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the answer"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines)}
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    buffer[:] = rest[length:]
    return status, headers, rest[:length]


def authorized_exporter(cloud: FakeNetatmoCloud, token_path: Path, start: StartExporter
              ) -> RunningExporter:
    seed_token(cloud, token_path)
    exporter = start("--refresh-interval", "1h")
    exporter.wait_for_metric("netatmo_up", 1.0)
    return exporter


def test_pipelined_requests_on_one_kept_alive_connection(
    cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    exporter = authorized_exporter(cloud, token_path, start_exporter)
    with _connect(exporter) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"HEAD /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
                     b"Accept: application/openmetrics-text\r\nConnection: close\r\n\r\n")
        buffer = bytearray()
        first = _read_answer(sock, buffer)
        healthy = _read_answer(sock, buffer)
        head = _read_answer(sock, buffer, head_only=True)
        negotiated = _read_answer(sock, buffer)
        assert sock.recv(1) == b""  # closed after `Connection: close`

    assert first[0] == "HTTP/1.1 200 OK" and b"netatmo_up 1.0" in first[2]
    assert healthy[0] == "HTTP/1.1 200 OK" and healthy[2] == b"OK\n"
    assert head[0] == "HTTP/1.1 200 OK" and head[1]["content-length"] == "3"
    assert negotiated[0] == "HTTP/1.1 200 OK"  # not HEAD's body misread as an answer
    assert negotiated[1]["content-encoding"] == "gzip"
    assert negotiated[1]["content-type"].startswith("application/openmetrics-text")
    assert gzip.decompress(negotiated[2]).rstrip().endswith(b"# EOF")
    assert negotiated[1]["connection"] == "close"


def test_head_then_get_on_one_connection_the_raw_bytes(
    cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    """HEAD answers GET's headers and not one byte of body: the bytes right after HEAD's
    blank line are the next answer's status line, on the same kept-alive connection.
    /metrics is prometheus_client, / a bottle page, the stylesheet a file bottle hands
    the server to send."""
    exporter = authorized_exporter(cloud, token_path, start_exporter)
    for path in ("/metrics", "/", "/static/style.css", "/-/healthy"):
        with _connect(exporter) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            got = _read_answer(sock, bytearray())
            sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                         "GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Connection: close\r\n\r\n".encode())
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk

        head, blank, rest = raw.partition(b"\r\n\r\n")
        assert got[0] == "HTTP/1.1 200 OK" and got[2], path
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and blank, path
        assert f"Content-Length: {len(got[2])}".encode() in head, path
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), (path, rest[:60])
        assert rest.endswith(b"\r\n\r\nOK\n"), path


def test_http_1_0_closes_and_expect_continue_is_answered(
    cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    exporter = authorized_exporter(cloud, token_path, start_exporter)
    with _connect(exporter) as sock:
        sock.sendall(b"GET /-/ready HTTP/1.0\r\n\r\n")
        old = _read_answer(sock, bytearray())
        assert sock.recv(1) == b""
    with _connect(exporter) as sock:
        sock.sendall(b"POST /auth/settoken HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 15\r\nExpect: 100-continue\r\n\r\n")
        buffer = bytearray()
        interim = _read_answer(sock, buffer, head_only=True)
        sock.sendall(b"refresh_token=x")
        refused = _read_answer(sock, buffer)

    assert old[0] == "HTTP/1.0 200 OK"
    assert interim[0] == "HTTP/1.1 100 Continue"
    assert refused[0].startswith("HTTP/1.1 403")
    assert cloud.count("refresh_grants") == 0
