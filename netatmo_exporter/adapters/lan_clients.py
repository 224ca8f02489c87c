"""Fairness between LAN clients: who a client is, a fair turn at expensive work, and the
count of what the edge turned away.

The LAN is not trusted, and one hostile host must not be able to lock the others out: not
by holding connections, not by guessing passwords (each guess costs a bcrypt check), not
by pressing the authorization buttons. Every such limit is counted per client address.
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from netatmo_exporter.adapters.metric_spec import metric

# Why the edge turned a request or a connection away; all are exposed from the start.
REFUSAL_REASONS = (
    "password_wrong",  # a basic-auth credential that does not match
    "password_busy",  # a password check waited too long for its turn (429)
    "connection_per_address",  # a connection closed: its address held too many
    "token_call_limited",  # a pasted token or callback over the per-minute budget (429)
    "authorizations_pending",  # too many authorizations started and not finished (429)
)
REFUSALS_METRIC = metric(
    "netatmo_exporter_http_refusals_total", "refusals",
    "Requests and connections the web edge turned away, by reason: password_wrong, "
    "password_busy, connection_per_address, token_call_limited, authorizations_pending",
    ("reason",), "counter")
MAX_REMEMBERED_CLIENTS = 1024


def client_key(address: str) -> str:
    """The client an address stands for: the IPv4 address, or the IPv6 /64 network (one
    host picks addresses from its /64 at will, privacy addresses among them)."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_network(address: str) -> str:
    """The network a client's address comes from, as far as one party holds it: the IPv4
    address (a LAN gives each host one), or the IPv6 /56 a provider delegates to one home.
    A guesser who rotates addresses within it keeps one history."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 56), strict=False))
    return client_key(address)


class RefusalCounts:
    """Thread-safe counts by reason, read by the collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(REFUSAL_REASONS, 0)

    def add(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class RefusalCollector(Collector):
    """`netatmo_exporter_http_refusals_total{reason}`, one series per reason, zero from the
    start so that an alert on its rate works before the first refusal."""

    def __init__(self, counts: RefusalCounts) -> None:
        self._counts = counts

    def describe(self) -> Iterator[Metric]:
        yield REFUSALS_METRIC.family()

    def collect(self) -> Iterator[Metric]:
        family = REFUSALS_METRIC.family()
        assert isinstance(family, CounterMetricFamily)
        for reason, count in sorted(self._counts.counts().items()):
            family.add_metric([reason], float(count))
        yield family


MAX_REMEMBERED_NETWORKS = 16384
TRUSTED, FRESH, SEEN = 0, 1, 2
"""A waiter's standing: its network passed a check before; made no attempt lately; or
did (a guesser, whose every address has, once it rotated through them)."""


@dataclass(eq=False)
class _Waiter:
    client: str
    arrived: int
    standing: int = FRESH
    displaced: bool = False


@dataclass
class FairGate:
    """Turns at an expensive piece of work (a bcrypt check), fair between clients.

    At most `slots` run at once and at most one per client, so a client's own flood of
    requests costs it only its own turn. Clients waiting for a turn are served by standing
    first: a network that passed a check before, then one that made no attempt for
    `memory` seconds, then the rest; within a standing, who was served least recently,
    never-served first; each waits at most `patience` seconds. At most `waiting` clients
    wait at once (each holds a server thread), and a newcomer that would go before a
    waiting client takes that one's place. A client without a turn is told to come back
    (`enter` returns False).

    The standing is what a guesser who rotates over many addresses cannot fake: each
    address's second attempt, refused or checked, ranks below anyone's first, so once it
    has gone through its addresses (a LAN's 254, an IPv6 /56's networks count as one) the
    first check of a fresh address, such as Prometheus' right after a restart, goes next.
    """

    slots: int = 1
    waiting: int = 2
    patience: float = 2.0
    memory: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _running: set[str] = field(default_factory=set)
    _waiters: list[_Waiter] = field(default_factory=list)
    _served: OrderedDict[str, int] = field(default_factory=OrderedDict)
    _tried: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _trusted: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _tickets: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def enter(self, client: str, network: str | None = None) -> bool:
        """A turn for `client`, whose attempts count for `network` (default: itself)."""
        with self._cond:
            standing = self._attempt(network or client)
            if client in self._running or any(w.client == client for w in self._waiters):
                return False
            if len(self._running) < self.slots and not self._waiters:
                self._start(client)
                return True
            waiter = _Waiter(client, next(self._tickets), standing)
            if len(self._waiters) >= self.waiting:
                latest = max(self._waiters, key=self._priority)
                if self._priority(latest) <= self._priority(waiter):
                    return False
                latest.displaced = True
                self._waiters.remove(latest)
                self._cond.notify_all()
            self._waiters.append(waiter)
            deadline = self.clock() + self.patience
            while not waiter.displaced:
                if len(self._running) < self.slots and \
                        min(self._waiters, key=self._priority) is waiter:
                    self._waiters.remove(waiter)
                    self._start(client)
                    self._cond.notify_all()
                    return True
                left = deadline - self.clock()
                if left <= 0:
                    self._waiters.remove(waiter)
                    self._cond.notify_all()
                    return False
                self._cond.wait(left)
            return False

    def leave(self, client: str) -> None:
        with self._cond:
            self._running.discard(client)
            self._cond.notify_all()

    def trust(self, network: str) -> None:
        """`network` passed a check: its next ones go first."""
        with self._cond:
            _remember(self._trusted, network, None)

    def _attempt(self, network: str) -> int:
        """The standing of this attempt, which counts from now on."""
        now = self.clock()
        last = self._tried.get(network)
        _remember(self._tried, network, now)
        if network in self._trusted:
            return TRUSTED
        return FRESH if last is None or now - last > self.memory else SEEN

    def _start(self, client: str) -> None:
        self._running.add(client)
        self._served[client] = next(self._tickets)
        self._served.move_to_end(client)
        while len(self._served) > MAX_REMEMBERED_CLIENTS:
            self._served.popitem(last=False)

    def _priority(self, waiter: _Waiter) -> tuple[int, int, int]:
        """Lower goes first: the better standing, the least recently served client, then
        the earliest arrival."""
        return waiter.standing, self._served.get(waiter.client, 0), waiter.arrived


def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > MAX_REMEMBERED_NETWORKS:
        memory.popitem(last=False)


class CallBudget:
    """Calls to Netatmo's token endpoint that LAN requests may cause (a pasted refresh
    token, an authorization callback): at most `per_client` a `window` for one client
    address and `total` for all of them, so that no LAN host can make the exporter hammer
    Netatmo with the owner's client id and secret, and one host's presses do not use up
    another's."""

    def __init__(self, per_client: int = 5, total: int = 20, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._per_client = per_client
        self._total = total
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._all: deque[float] = deque()
        self._by_client: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, client: str) -> float:
        """Seconds until `client` may cause a call; 0 when it may now."""
        with self._lock:
            return self._wait(client, self._clock())

    def take(self, client: str) -> float:
        """Spend one call for `client` if it may; else the seconds it must wait."""
        now = self._clock()
        with self._lock:
            wait = self._wait(client, now)
            if wait > 0:
                return wait
            self._all.append(now)
            mine = self._by_client.setdefault(client, deque())
            mine.append(now)
            self._by_client.move_to_end(client)
            while len(self._by_client) > MAX_REMEMBERED_CLIENTS:
                self._by_client.popitem(last=False)
            return 0.0

    def _wait(self, client: str, now: float) -> float:
        since = now - self._window
        for times in (self._all, self._by_client.get(client, deque())):
            while times and times[0] <= since:
                times.popleft()
        waits = [0.0]
        if len(self._all) >= self._total:
            waits.append(self._all[0] - since)
        mine = self._by_client.get(client)
        if mine is not None and len(mine) >= self._per_client:
            waits.append(mine[0] - since)
        return max(waits)
