"""The control socket over a real unix socket: every line gets one answer and the server
lives on, a flush never waits behind a renewal or a slow client, bookings and rejections
are paced."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netatmo_exporter.adapters.system.control_client import ServiceBudget, request_flush
from netatmo_exporter.adapters.system.control_socket import (
    BOOKED_SHARE_CAP,
    BOOKINGS,
    MAX_CONNECTIONS,
    MAX_REQUEST,
    REJECTIONS,
    BadRequest,
    Command,
    ControlSocketServer,
    parse_command,
)
from netatmo_exporter.domain.call_policy import CallBudget
from tests.unit.fakes import FakeClock, FakeLog


@dataclass
class SlowTokens:
    """`AccessTokens` whose `access_token` waits until `answer` is set (a renewal that
    hangs at Netatmo); rejections recorded."""

    answer: threading.Event = field(default_factory=threading.Event)
    asked: threading.Event = field(default_factory=threading.Event)
    rejected: list[str] = field(default_factory=list)

    def access_token(self) -> str:
        self.asked.set()
        self.answer.wait(30.0)
        return "access-1"

    def reject_access_token(self, access_token: str) -> None:
        self.rejected.append(access_token)


@dataclass
class Served:
    path: str
    tokens: SlowTokens
    budget: CallBudget
    clock: FakeClock
    flushes: list[int]
    log: FakeLog

    def ask(self, line: bytes, timeout: float = 10.0) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(self.path)
            sock.sendall(line)
            return read_all(sock)

    def flush_works(self) -> bool:
        before = len(self.flushes)
        return request_flush(self.path, 10.0)[0] == 0 and len(self.flushes) == before + 1


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


@pytest.fixture
def served() -> Iterator[Served]:
    with tempfile.TemporaryDirectory(prefix="ctl") as name:  # a short unix socket path
        path = str(Path(name) / "control.sock")
        clock, log, budget, tokens = FakeClock(), FakeLog(), CallBudget(), SlowTokens()
        flushes: list[int] = []

        def flush() -> str:
            flushes.append(1)
            return "/fake/token.json"

        server = ControlSocketServer(path, flush, log, tokens,
                                     lambda share: budget.take("backfill", share, clock.now()),
                                     clock=clock.now)
        server.start()
        try:
            yield Served(path, tokens, budget, clock, flushes, log)
        finally:
            tokens.answer.set()
            server.stop()


@pytest.mark.parametrize(("line", "command"), [
    (b"flush", Command("flush")),
    (b"flush\r\n", Command("flush")),
    (b"access-token\n", Command("access-token")),
    (b"book-call 250\n", Command("book-call", 250)),
    (b"book-call 1\n", Command("book-call", 1)),
    (b"reject-access-token abc|123\n", Command("reject-access-token", "abc|123")),
])
def test_commands_parse(line: bytes, command: Command) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize("line", [
    b"", b"\n", b"FLUSH", b"flush now", b" flush", b"flush ", b"access-token x",
    b"book-call \xc2\xb2", b"book-call 0", b"book-call 501", b"book-call -1", b"book-call 1e3",
    b"book-call 0x10", b"book-call 10000", b"book-call", b"book-call 1 2",
    b"reject-access-token", b"reject-access-token ", b"reject-access-token a b",
    b"reject-access-token \xff\xfe", b"\xff\xfe\n", b"flush\x00", b"x" * 5000,
])
def test_anything_else_is_a_bad_request(line: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_command(line)


@pytest.mark.parametrize("line", [
    b"book-call \xc2\xb2\n", b"book-call 0\n", b"\xff\xfe\n", b"flush now\n", b"\n",
    b"reject-access-token\n", b"hello\x00\n",
])
def test_a_bad_line_gets_one_error_line_and_later_flushes_still_work(
        served: Served, line: bytes) -> None:
    for _ in range(3):
        answer = served.ask(line)
        assert answer.startswith(b"error ") and answer.count(b"\n") == 1, answer
    assert served.flush_works()
    assert served.tokens.rejected == []


def test_a_line_too_long_is_refused_without_reading_on(served: Served) -> None:
    answer = served.ask(b"f" * (MAX_REQUEST * 4))
    assert answer.startswith(b"error too_long")
    assert served.flush_works()


def test_a_flush_answers_while_an_access_token_request_waits_on_a_renewal(
        served: Served) -> None:
    waiting = threading.Thread(target=served.ask, args=(b"access-token\n", 30.0))
    waiting.start()
    try:
        assert served.tokens.asked.wait(5.0)
        assert served.flush_works()
    finally:
        served.tokens.answer.set()
        waiting.join(10.0)


def test_idle_and_dripping_clients_cannot_block_a_flush(served: Served) -> None:
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(MAX_CONNECTIONS)]
    stop = threading.Event()
    drip = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def dripping() -> None:
        for _ in range(100):  # one byte every 0.1 s, never a whole line
            if stop.wait(0.1):
                return
            try:
                drip.send(b"f")
            except OSError:
                return

    dripper = threading.Thread(target=dripping)
    try:
        drip.connect(served.path)
        dripper.start()
        for sock in idle:  # every slot taken, and one more connection
            sock.connect(served.path)

        assert served.flush_works()  # may be told "busy" first, then let in

        drip.settimeout(10.0)
        assert read_all(drip).startswith(b"error timeout")
        for sock in idle:
            sock.settimeout(10.0)
            assert read_all(sock).split(b" ")[:2] in ([b"error", b"timeout"], [b"error", b"busy"])
    finally:
        stop.set()
        dripper.join(5.0) if dripper.is_alive() else None
        for sock in (*idle, drip):
            sock.close()


def test_a_flush_waits_while_the_accept_queue_is_full() -> None:
    """Under load the service's accept loop falls behind and its queue fills: a client
    with a timeout is then refused at once (EAGAIN), and the flush must wait, not fail."""
    with tempfile.TemporaryDirectory(prefix="ctl") as name, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        path = str(Path(name) / "control.sock")
        listener.bind(path)
        listener.listen(0)
        listener.settimeout(10.0)
        queued = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(8)]
        results: list[tuple[int, str]] = []
        flushing = threading.Thread(target=lambda: results.append(request_flush(path, 20.0)))
        try:
            with pytest.raises(BlockingIOError):
                for sock in queued:
                    sock.settimeout(1.0)
                    sock.connect(path)
            flushing.start()
            time.sleep(0.5)  # the point: the flush meets the full queue for a while
            for _ in range(len(queued) + 1):  # the queued clients, then the flush
                conn, _ = listener.accept()
                with conn, contextlib.suppress(TimeoutError):
                    conn.settimeout(0.5)
                    if conn.recv(64) == b"flush\n":
                        conn.sendall(b"ok /fake/token.json\n")
                        break
        finally:
            flushing.join(25.0)
            for sock in queued:
                sock.close()
    assert results == [(0, "token flushed to /fake/token.json")]


def test_a_book_call_loop_gets_at_most_the_capped_share_and_the_pace(served: Served) -> None:
    booked = 0
    for _ in range(600):  # asking as fast as answers come, waiting only as told
        answer = served.ask(b"book-call 500\n")
        if answer == b"ok\n":
            booked += 1
            continue
        assert answer.startswith(b"wait "), answer
        wait = float(answer.split()[1])
        if wait > BOOKINGS[1]:
            break  # the hour's share is taken: the rest of the hour is the service's
        served.clock.advance(wait + 0.001)

    calls = served.budget.use(served.clock.now())
    assert booked == calls.last_hour == BOOKED_SHARE_CAP
    assert calls.last_10s <= BOOKINGS[0]
    # The service's own callers keep room within the hour.
    assert served.budget.room("refresher", None, served.clock.now() + BOOKINGS[1]) == 0.0


def test_the_backfills_budget_client_books_through_the_pace(served: Served) -> None:
    budget = ServiceBudget(served.path, timeout=5.0)
    waits = [budget.take("backfill", 250, served.clock.now()) for _ in range(BOOKINGS[0] + 1)]
    assert waits[:-1] == [0.0] * BOOKINGS[0] and waits[-1] > 0.0


def test_a_rejection_loop_forces_few_renewals(served: Served) -> None:
    answers = [served.ask(b"reject-access-token access-1\n") for _ in range(200)]

    assert served.tokens.rejected == ["access-1"] * REJECTIONS[0]
    assert answers.count(b"ok\n") == REJECTIONS[0]
    assert all(a.startswith(b"error rate_limited") for a in answers[REJECTIONS[0]:])
    served.clock.advance(REJECTIONS[1])
    assert served.ask(b"reject-access-token access-1\n") == b"ok\n"
    assert served.flush_works()
