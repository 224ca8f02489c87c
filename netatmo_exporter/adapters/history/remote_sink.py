"""`backfill --remote-write`: the backfill's pages go to a receiver of Prometheus remote
write instead of spool files.

A page's readings are held until the engine checkpoints it; they are sent then, and the
checkpoint is written only once the receiver took them, so a page it did not take is
fetched and sent again by the next run of the same command. Answers worth retrying (429,
5xx, unreachable) are retried a bounded number of times with a doubling wait (or the one
the receiver asks for), interruptible; the others end the run with the receiver's line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from netatmo_exporter.adapters.history.spool import WorkDirectory
from netatmo_exporter.domain.call_policy import Stopped
from netatmo_exporter.domain.history.plan import Cursors, HistoryError, Plan, Series, TimeRange
from netatmo_exporter.domain.history.remote_write import HistoryReceiver, ReceiverError

TRIES = 8
FIRST_WAIT = 2.0
LONGEST_WAIT = 300.0
"""Waits double from 2 s and never exceed 5 minutes: about 4 minutes in all before the run
gives up (the same command continues it)."""


class RemoteWriteSink(WorkDirectory):
    """Satisfies `HistorySink`; the work directory holds only the checkpoint.
    `wait(seconds)` returns True when the run is asked to stop; `waiting(seconds, why)`
    tells the user."""

    def __init__(self, directory: Path, receiver: HistoryReceiver,
                 wait: Callable[[float], bool], waiting: Callable[[float, str], None],
                 tries: int = TRIES) -> None:
        super().__init__(directory)
        self.written = 0
        """Samples the receiver took in this run."""
        self._receiver = receiver
        self._wait = wait
        self._waiting = waiting
        self._tries = tries
        self._counts: dict[str, int] = {}
        self._pending: list[tuple[Series, Sequence[tuple[int, float]]]] = []

    def load(self, identity: Mapping[str, Any]) -> tuple[Plan, TimeRange, Cursors] | None:
        resumed = super().load(identity)
        if resumed is not None:
            self._counts = dict(resumed[2].spooled)
        return resumed

    def start(self, identity: Mapping[str, Any], plan: Plan, span: TimeRange,
              cursors: Cursors) -> None:
        self._counts = dict(cursors.spooled)
        super().start(identity, plan, span, cursors)

    def append(self, series: Series, samples: Sequence[tuple[int, float]]) -> int:
        """Holds the readings for `checkpoint`; returns the series' samples so far."""
        if samples:
            self._pending.append((series, samples))
        self._counts[series.key] = self._counts.get(series.key, 0) + len(samples)
        return self._counts[series.key]

    def checkpoint(self, cursors: Cursors) -> None:
        if self._pending:
            self.written += self._send(self._pending)
            self._pending = []
        super().checkpoint(cursors)

    def _send(self, batch: Sequence[tuple[Series, Sequence[tuple[int, float]]]]) -> int:
        wait = FIRST_WAIT
        for attempt in range(1, self._tries + 1):
            try:
                return self._receiver.write(batch)
            except ReceiverError as exc:
                if not exc.retry:
                    raise HistoryError(str(exc)) from None
                if attempt == self._tries:
                    raise HistoryError(f"{exc} (gave up after {attempt} tries)") from None
                delay = min(LONGEST_WAIT, wait if exc.retry_after is None
                            else max(exc.retry_after, 0.0))
                self._waiting(delay, str(exc))
                if self._wait(delay):
                    raise Stopped() from None
                wait *= 2
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._pending = []
