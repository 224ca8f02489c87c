"""A fair turn at expensive work (a password check) between LAN clients."""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from netatmo_exporter.adapters.lan.clients import MAX_REMEMBERED_CLIENTS

MAX_REMEMBERED_NETWORKS = 16384
TRUSTED, FRESH, SEEN = 0, 1, 2
"""A waiter's standing: its network passed a check before; made no attempt lately; or
did (a guesser, whose every address has, once it rotated through them)."""
TURNS_WAITED = 3
"""A waiter's patience covers at least this many turns at their recent length."""
TURN_SMOOTHING = 0.3


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
    never-served first; each waits at most `patience` seconds, or three turns' time when the
    work takes longer here (a Raspberry Pi, a machine under load: a fixed wait would turn
    away the very first-timer the order put next). At most `waiting` clients
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
    _started: dict[str, float] = field(default_factory=dict)
    _turn_time: float = 0.0
    """How long a turn takes, smoothed over the recent ones."""

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
            deadline = self.clock() + self.current_patience()
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

    def current_patience(self) -> float:
        """How long a waiter waits for its turn now: `patience`, or three recent turns."""
        return max(self.patience, TURNS_WAITED * self._turn_time)

    def leave(self, client: str) -> None:
        with self._cond:
            self._running.discard(client)
            started = self._started.pop(client, None)
            if started is not None:
                took = max(0.0, self.clock() - started)
                self._turn_time += (took - self._turn_time) * TURN_SMOOTHING
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
        self._started[client] = self.clock()
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
