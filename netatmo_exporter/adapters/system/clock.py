"""The real clock, and one running faster than it."""

from __future__ import annotations

import threading
import time


class SystemClock:
    def now(self) -> float:
        return time.time()


class ScaledClock:
    """A clock running `scale` times faster than the wall clock from its creation: shared
    by the simulated cloud and an in-process exporter (`build_app(clock=...,
    wait=clock.wait)`), so that hours of uploads pass in minutes with every sleep scaled
    alike; the backfill's budget under `budget_speedup`."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._start = time.time()

    def now(self) -> float:
        return self._start + (time.time() - self._start) * self.scale

    def wait(self, event: threading.Event, timeout: float) -> object:
        return event.wait(timeout / self.scale)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.scale)
