"""The network edge as an unfriendly LAN device meets it: raw bytes, ambiguous framing,
idle and slow connections by the hundred, large bodies. A scrape keeps answering."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from netatmo_exporter.adapters.web.http_server import ServerLimits
from netatmo_exporter.entrypoints.bootstrap import build_app
from netatmo_exporter.entrypoints.config import load_config
from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.robustness.conftest import LogStream, RunningExporter, StartExporter
from tests.robustness.test_http_server import authorized_exporter
from tests.support.harness import ExporterProcess, seed_token
from tests.support.lan_attack import read_status
from tests.support.lan_crowd import LanCrowd

FORM = b"POST /auth/settoken HTTP/1.1\r\nHost: 127.0.0.1\r\n"
HEALTHY = b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n"

# (raw request, status, connection closed after the answer)
CORPUS: list[tuple[str, bytes, int, bool]] = [
    ("plain", HEALTHY + b"\r\n", 200, False),
    ("http_1_0_closes", b"GET /-/healthy HTTP/1.0\r\n\r\n", 200, True),
    ("head_metrics", b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200, False),
    ("two_content_lengths",
     FORM + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, True),
    ("two_different_content_lengths",
     FORM + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, True),
    ("content_length_underscore", FORM + b"Content_Length: 5\r\n\r\nhello", 400, True),
    ("transfer_encoding_underscore",
     FORM + b"Transfer_Encoding: chunked\r\n\r\n0\r\n\r\n", 400, True),
    ("te_and_cl", FORM + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
     400, True),
    ("cl_and_te", FORM + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, True),
    ("te_gzip", FORM + b"Transfer-Encoding: gzip\r\n\r\n", 501, True),
    ("te_xchunkedx", FORM + b"Transfer-Encoding: xchunkedx\r\n\r\n", 501, True),
    ("te_stacked", FORM + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, True),
    ("te_twice", FORM + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400, True),
    ("bare_lf_in_headers", HEALTHY + b"X-A: b\nX-B: c\r\n\r\n", 400, True),
    ("bare_cr_in_headers", HEALTHY + b"X-A: b\rX-B: c\r\n\r\n", 400, True),
    ("obs_fold", HEALTHY + b"X-A: b\r\n folded\r\n\r\n", 400, True),
    ("space_in_name", HEALTHY + b"Bad Name: v\r\n\r\n", 400, True),
    ("space_before_colon", HEALTHY + b"Host : y\r\n\r\n", 400, True),
    ("control_in_name", HEALTHY + b"Bad\x01Name: v\r\n\r\n", 400, True),
    ("nul_in_value", HEALTHY + b"X-A: a\x00b\r\n\r\n", 400, True),
    ("version_garbage", b"GET /-/healthy HTTP/1.9xyz\r\nHost: x\r\n\r\n", 400, True),
    ("version_1_9", b"GET /-/healthy HTTP/1.9\r\nHost: x\r\n\r\n", 400, True),
    ("version_2_0", b"GET /-/healthy HTTP/2.0\r\nHost: x\r\n\r\n", 400, True),
    ("http_0_9", b"GET /-/healthy\r\n\r\n", 400, True),
    ("lowercase_method", b"get /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    ("double_space", b"GET  /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    ("no_host_1_1", b"GET /-/healthy HTTP/1.1\r\n\r\n", 400, True),
    ("two_hosts", HEALTHY + b"Host: other\r\n\r\n", 400, True),
    ("absolute_form_other_host", b"GET http://evil.example/-/healthy HTTP/1.1\r\n"
     b"Host: 127.0.0.1\r\n\r\n", 400, True),
    ("absolute_form_same_host", b"GET http://127.0.0.1/-/healthy HTTP/1.1\r\n"
     b"Host: 127.0.0.1\r\n\r\n", 200, False),
    ("percent_encoded_metrics", b"GET /%6detrics HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    ("arabic_digit_length", FORM + b"Content-Length: \xd9\xa3\r\n\r\nabc", 400, True),
    ("signed_length", FORM + b"Content-Length: +3\r\n\r\nabc", 400, True),
    ("hex_length", FORM + b"Content-Length: 0x3\r\n\r\nabc", 400, True),
    ("body_on_get", HEALTHY + b"Content-Length: 5\r\n\r\nhello", 413, True),
    ("chunked_body_on_get", HEALTHY + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
     b"0\r\n\r\n", 413, True),
    ("body_on_metrics_post", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
     413, True),
    ("form_too_large", FORM + b"Content-Length: 99999999\r\n\r\n", 413, True),
    ("headers_too_large", HEALTHY + b"X-A: " + b"b" * 20000 + b"\r\n\r\n", 431, True),
    ("garbage", b"GARBAGE\r\n\r\n", 400, True),
    ("bad_chunk_size", FORM + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
     400, True),
    # Names and URLs are ASCII: no page ever decodes another byte (bottle's UTF-8 decoding
    # of an undecodable one was a 500 and a traceback per request).
    ("host_undecodable_byte", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\xff\r\n\r\n", 400, True),
    ("host_utf8_name", b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9.local\r\n\r\n", 400, True),
    ("host_control_byte", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\x1b\r\n\r\n", 400, True),
    ("origin_undecodable_byte", FORM + b"Origin: http://127.0.0.1\xff\r\n"
     b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b",
     400, True),
    ("referer_undecodable_byte", FORM + b"Referer: http://127.0.0.1/\xc3\r\n"
     b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b",
     400, True),
    ("nul_in_target", b"GET /-/healthy\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    ("control_in_target", b"GET /-/hea\x01lthy HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    ("escape_in_query", b"GET /metrics?name[]=\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    ("del_in_query", b"GET /metrics?a=\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    ("non_ascii_in_target", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
]


def _exchange(port: int, raw: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send `raw`, read the first answer; True when the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        return _read_one(sock, head_only=raw.startswith(b"HEAD "))


def _read_one(sock: socket.socket, head_only: bool = False) -> tuple[bytes, bool]:
    """Read one answer; True when the server closed the connection after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data, True
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = None if head_only else _header(head, b"content-length")
    while length is not None and len(body) < int(length):
        chunk = sock.recv(65536)
        if not chunk:
            return data, True
        body += chunk
    sock.settimeout(0.5)
    try:
        closed = sock.recv(1) == b""
    except TimeoutError:
        closed = False
    except ConnectionResetError:  # closed with unread bytes of ours pending
        closed = True
    return head + b"\r\n\r\n" + body, closed


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


@pytest.fixture
def edge(cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
         ) -> RunningExporter:
    return authorized_exporter(cloud, token_path, start_exporter)


@pytest.mark.parametrize(("raw", "status", "closed"), [case[1:] for case in CORPUS],
                         ids=[case[0] for case in CORPUS])
def test_raw_request_corpus(edge: RunningExporter, raw: bytes, status: int, closed: bool,
                            token_path: Path) -> None:
    before = token_path.read_bytes()
    port = int(edge.app.server.server_address[1])

    answer, was_closed = _exchange(port, raw)

    head = answer.partition(b"\r\n\r\n")[0]
    assert int(answer.split(b" ", 2)[1]) == status, answer[:200]
    assert was_closed is closed
    assert _header(head, b"x-content-type-options") == b"nosniff"
    assert _header(head, b"x-frame-options") == b"DENY"
    assert _header(head, b"server") is None
    if status >= 400:
        reason = answer.split(b"\r\n")[0].split(b" ", 1)[1]
        assert answer.partition(b"\r\n\r\n")[2] == reason + b"\n"
    assert token_path.read_bytes() == before
    assert edge.get("/-/healthy")[0] == 200


def test_error_answers_echo_nothing_the_client_sent(edge: RunningExporter) -> None:
    port = int(edge.app.server.server_address[1])
    marker = b"<script>alert(1)</script>"

    answer, closed = _exchange(port, HEALTHY + b"X-" + marker + b": v\r\n\r\n")

    assert closed
    assert answer.startswith(b"HTTP/1.0 400 Bad Request\r\n") or answer.startswith(
        b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.partition(b"\r\n\r\n")[2] == b"400 Bad Request\n"
    assert marker not in answer


def _short_deadlines(cloud: FakeNetatmoCloud, token_path: Path) -> Iterator[RunningExporter]:
    seed_token(cloud, token_path)
    config = load_config(["--addr", "127.0.0.1:0",
                          *exporter_args(cloud, token_path, "--refresh-interval", "1h")], {})
    log = LogStream()
    limits = ServerLimits(request_timeout=1.0, idle_timeout=2.0)
    exporter = RunningExporter(build_app(config, log_stream=log, server_limits=limits), log)
    exporter.app.start()
    try:
        yield exporter
    finally:
        exporter.stop()


@pytest.fixture
def short_deadlines(cloud: FakeNetatmoCloud, token_path: Path) -> Iterator[RunningExporter]:
    yield from _short_deadlines(cloud, token_path)


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> tuple[bool, int]:
    """Wait for the server to close `sock`, sending one byte of `trickle` every 0.2 s;
    returns whether it closed and how many bytes were sent."""
    deadline = time.monotonic() + seconds
    sent = 0
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            if sock.recv(1) == b"":
                return True, sent
        except TimeoutError:
            pass
        except ConnectionResetError:
            return True, sent
        if sent < len(trickle):
            try:
                sock.sendall(trickle[sent:sent + 1])
            except OSError:
                return True, sent
            sent += 1
    return False, sent


def test_silent_and_slow_clients_are_dropped_at_the_request_deadline(
    short_deadlines: RunningExporter
) -> None:
    port = int(short_deadlines.app.server.server_address[1])
    slow_request = HEALTHY + b"X-Padding: " + b"a" * 100 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port)) as silent:
        silent_closed, _ = _closed_within(silent, 8.0)
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow_closed, sent = _closed_within(slow, 8.0, trickle=slow_request)

    assert silent_closed
    # A byte every 0.2 s keeps the connection busy, but not past the 1 s request deadline.
    assert slow_closed and 3 <= sent < len(slow_request)


def test_kept_alive_connection_is_closed_when_idle(short_deadlines: RunningExporter) -> None:
    port = int(short_deadlines.app.server.server_address[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(HEALTHY + b"\r\n")
        first = sock.recv(65536)
        while not first.endswith(b"OK\n"):
            first += sock.recv(65536)
        sock.sendall(HEALTHY + b"\r\n")  # still open after its first answer
        second = sock.recv(65536)
        closed, _ = _closed_within(sock, 10.0)

    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
    assert closed


# -- floods, against a real exporter process with the shipped limits --------------------

def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _scrape(port: int) -> tuple[int, float]:
    started = time.monotonic()
    answer, _ = _exchange(port, b"GET /metrics HTTP/1.1\r\nHost: prometheus:9210\r\n"
                                b"Connection: close\r\n\r\n")
    return int(answer.split(b" ", 2)[1]), time.monotonic() - started


def test_scrapes_answer_while_hundreds_of_idle_and_slow_connections_are_held(
    exporter_process: ExporterProcess
) -> None:
    port = exporter_process.port
    crowd = LanCrowd(port, idle=300, slow=300)
    answers: list[tuple[int, float]] = []
    try:
        for _ in range(12):  # every 5 s for 60 s
            crowd.tend(5.0)
            assert crowd.count() == 600
            answers.append(_scrape(port))
    finally:
        crowd.close()

    print(f"scrapes under 300 idle + 300 slow connections: {answers}; "
          f"connections the server dropped and the crowd reopened: {crowd.reconnects}")
    assert all(status == 200 for status, _ in answers)
    assert max(took for _, took in answers) < 1.0
    assert crowd.reconnects >= 600  # each was dropped at its deadline at least once


def test_bodies_are_refused_unread_and_memory_stays_flat(
    exporter_process: ExporterProcess
) -> None:
    assert exporter_process.proc is not None
    pid, port = exporter_process.proc.pid, exporter_process.port
    body = b"x" * (1024 * 1024)
    targets = [b"POST /-/healthy", b"POST /metrics", b"PUT /", b"POST /auth/settoken"]
    baseline = _rss_kib(pid)
    peak = baseline
    statuses: dict[int, int] = {}
    socks = []
    for i in range(256):
        # From eight LAN addresses: one address's share of served connections is 64.
        sock = socket.create_connection(("127.0.0.1", port), timeout=5.0,
                                        source_address=(f"127.0.1.{i % 8 + 1}", 0))
        sock.sendall(targets[i % len(targets)] + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        sock.setblocking(False)
        socks.append([sock, 0, b""])
    deadline = time.monotonic() + 60.0
    while socks and time.monotonic() < deadline:
        for entry in list(socks):
            sock, offset, answer = entry
            try:
                if offset < len(body):
                    entry[1] += sock.send(body[offset:offset + 65536])
                chunk = sock.recv(65536)
                if chunk:
                    entry[2] += chunk
                    continue
            except BlockingIOError:
                continue
            except OSError:
                pass
            answer = entry[2]
            if answer:
                code = int(answer.split(b" ", 2)[1])
                statuses[code] = statuses.get(code, 0) + 1
            sock.close()
            socks.remove(entry)
        peak = max(peak, _rss_kib(pid))
    scrape = _scrape(port)
    for sock, _, _ in socks:
        sock.close()

    print(f"RSS before {baseline} KiB, peak {peak} KiB during 256 x 1 MiB bodies; "
          f"answers {statuses}, the others reset with the body unread")
    assert not socks, "connections still open after 60 s"
    # The server answers right after the headers and closes; a client still sending its
    # body may see the reset before the answer, which is TCP's way with unread data.
    assert set(statuses) == {413} and sum(statuses.values()) >= 32
    assert peak - baseline < 20 * 1024
    assert scrape[0] == 200


def test_a_burst_of_scrapes_leaves_the_log_quiet(exporter_process: ExporterProcess) -> None:
    port = exporter_process.port

    with ThreadPoolExecutor(16) as pool:
        statuses = [status for status, _ in pool.map(lambda _: _scrape(port), range(400))]

    assert statuses == [200] * 400
    # waitress's "Task queue depth is N" warnings would flood the journal under load.
    assert "queue depth" not in exporter_process.logs()


def test_bad_bytes_leave_the_log_quiet_and_tracebacks_out(
    edge: RunningExporter, capfd: pytest.CaptureFixture[str]
) -> None:
    port = int(edge.app.server.server_address[1])
    before = len(edge.log.lines())
    bad = [case[1] for case in CORPUS if case[0].endswith(("_byte", "_target", "_query"))]

    statuses = [int(_exchange(port, raw)[0].split(b" ", 2)[1]) for raw in bad * 10]
    long_host = _exchange(port, b"GET / HTTP/1.1\r\nHost: " + b"a" * 15000 + b"\r\n\r\n")[0]

    added = edge.log.lines()[before:]
    printed = capfd.readouterr()
    assert set(statuses) == {400}
    assert long_host.startswith(b"HTTP/1.1 421")
    # The refusals by the parser are not logged; the one refused Host is, cut short.
    assert len(added) == 1 and "event=host_refused" in added[0], added
    assert len(added[0]) < 400 and "[cut 14800 chars]" in added[0]
    assert "Traceback" not in printed.out + printed.err


def test_a_flood_of_refused_host_names_writes_a_line_per_address_and_name(
    edge: RunningExporter
) -> None:
    port = int(edge.app.server.server_address[1])
    before = len(edge.log.lines())
    raw = b"GET / HTTP/1.1\r\nHost: rebind.attacker.example\r\n\r\n"

    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        buffer = bytearray()
        statuses = []
        for _ in range(200):
            sock.sendall(raw)
            statuses.append(read_status(sock, buffer))

    added = [line for line in edge.log.lines()[before:] if "event=host_refused" in line]
    assert set(statuses) == {421}
    assert len(added) == 1 and "remote=127.0.0.1" in added[0] and "held_back=0" in added[0]
