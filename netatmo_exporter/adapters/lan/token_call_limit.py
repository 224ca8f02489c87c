"""How many calls to Netatmo's token endpoint LAN requests may cause."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from netatmo_exporter.adapters.lan.clients import MAX_REMEMBERED_CLIENTS


class TokenCallLimit:
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
