"""Attacks from one LAN address while another scrapes: the drivers shared by the
robustness tests (short runs) and bench/lan_edge.py (the full minute, figures printed).

Each side binds its own loopback source address, as the exporter tells clients apart by
address: ATTACKER (127.0.0.2) attacks, PROMETHEUS (127.0.0.3) scrapes.
"""

from __future__ import annotations

import base64
import itertools
import resource
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from tests.support.lan_crowd import ATTACKER, PROMETHEUS, LanCrowd

__all__ = ["ATTACKER", "PROMETHEUS", "ROTATING", "PasswordFlood", "Scrapes", "connect_from",
           "crowd_while_scraping", "first_checks", "fresh_address", "raise_file_limit",
           "request", "scrape_from"]


def connect_from(source: str, port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


def request(path: str, *, auth: tuple[str, str] | None = None, close: bool = False) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    if auth is not None:
        credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        lines.append(f"Authorization: Basic {credentials}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_status(sock: socket.socket, buffer: bytearray) -> int:
    """Read one answer (headers and Content-Length body) from `sock`; its status."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before an answer")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside an answer")
        rest += chunk
    buffer[:] = rest[length:]
    return int(head.split(b" ", 2)[1])


def scrape_from(source: str, port: int, auth: tuple[str, str] | None = None,
                timeout: float = 10.0) -> tuple[int, float]:
    """One scrape of /metrics on a fresh connection: (status or 0 on failure, seconds)."""
    started = time.monotonic()
    try:
        with connect_from(source, port, timeout) as sock:
            sock.sendall(request("/metrics", auth=auth, close=True))
            status = read_status(sock, bytearray())
    except OSError:
        status = 0
    return status, time.monotonic() - started


ROTATING = tuple(f"127.0.0.{n}" for n in range(2, 256))
"""The 254 addresses of a LAN a rotating guesser takes turns with."""


def fresh_address(n: int) -> str:
    """An address none of the attacks uses: where an owner's first check comes from."""
    return f"127.0.1.{n % 254 + 1}"


@dataclass
class PasswordFlood:
    """`connections` kept-alive connections from `source`, each sending wrong passwords as
    fast as the answers come, until stopped (or `limit` seconds at most). With `rotating`
    addresses, each guess goes on a new connection from the next of them."""

    port: int
    user: str
    connections: int = 8
    source: str = ATTACKER
    limit: float = 120.0
    rotating: tuple[str, ...] = ()
    statuses: Counter[int] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _turn: Iterator[int] = field(default_factory=itertools.count)

    def start(self) -> PasswordFlood:
        for index in range(self.connections):
            thread = threading.Thread(target=self._guess, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15.0)

    def _guess(self, index: int) -> None:
        deadline = time.monotonic() + self.limit
        attempt = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                with connect_from(self._next_source(), self.port) as sock:
                    buffer = bytearray()
                    while not self._stop.is_set() and time.monotonic() < deadline:
                        attempt += 1
                        sock.sendall(request("/metrics",
                                             auth=(self.user, f"guess-{index}-{attempt}"),
                                             close=bool(self.rotating)))
                        status = read_status(sock, buffer)
                        with self._lock:
                            self.statuses[status] += 1
                        if self.rotating:
                            break
            except OSError:
                with self._lock:
                    self.statuses[0] += 1


    def _next_source(self) -> str:
        if not self.rotating:
            return self.source
        with self._lock:
            return self.rotating[next(self._turn) % len(self.rotating)]


def first_checks(port: int, credentials: Sequence[tuple[str, str]], every: float
                 ) -> list[tuple[int, float]]:
    """Each credential's first, uncached check, each from a fresh address, `every` seconds
    apart: (status or 0, seconds) each."""
    results = []
    for n, credential in enumerate(credentials):
        started = time.monotonic()
        results.append(scrape_from(fresh_address(n), port, credential))
        time.sleep(max(0.0, every - (time.monotonic() - started)))
    return results


@dataclass
class Scrapes:
    """Scrapes from one address on fresh connections, every `every` seconds."""

    results: list[tuple[int, float]] = field(default_factory=list)

    def run(self, port: int, seconds: float, every: float,
            auth: tuple[str, str] | None = None, source: str = PROMETHEUS) -> Scrapes:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            self.results.append(scrape_from(source, port, auth))
            time.sleep(max(0.0, every - (time.monotonic() - started)))
        return self

    @property
    def ok(self) -> int:
        return sum(1 for status, _ in self.results if status == 200)

    @property
    def share_ok(self) -> float:
        return self.ok / len(self.results) if self.results else 0.0

    @property
    def slowest(self) -> float:
        return max((took for _, took in self.results), default=0.0)

    def summary(self) -> str:
        took = sorted(took for _, took in self.results)
        median = took[len(took) // 2] if took else 0.0
        return (f"{self.ok}/{len(self.results)} scrapes 200 ({self.share_ok:.1%}), "
                f"median {median * 1000:.0f} ms, slowest {self.slowest * 1000:.0f} ms")


def raise_file_limit() -> tuple[int, int]:
    """The soft descriptor limit raised to the hard one, for a crowd of connections;
    returns the previous limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


def crowd_while_scraping(port: int, held: int, seconds: float, every: float = 2.0
                         ) -> tuple[LanCrowd, Scrapes]:
    """`held` connections from ATTACKER for `seconds` (a third idle, a third slow, a third
    kept alive with a request every 30 s), a fresh scrape from PROMETHEUS every `every`
    seconds."""
    crowd = LanCrowd(port, idle=held // 3, slow=held // 3, kept=held - 2 * (held // 3))
    scrapes = Scrapes()
    try:
        crowd.tend(min(2.0, seconds))  # the crowd in place before the first scrape
        scraper = threading.Thread(target=scrapes.run, args=(port, seconds, every),
                                   daemon=True)
        scraper.start()
        crowd.tend(seconds)
        scraper.join(timeout=every + 15.0)
    finally:
        crowd.close()
    return crowd, scrapes
