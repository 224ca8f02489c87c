"""The backfill run: page every planned source, hand readings to the sink, checkpoint.

Each page is appended to the spools and then checkpointed, so a run stopped anywhere
continues from its last checkpoint and writes exactly what an uninterrupted run writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from netatmo_exporter.domain.call_policy import Stopped
from netatmo_exporter.domain.errors import (
    ApiError,
    MissingScope,
)
from netatmo_exporter.domain.history.plan import (
    PAGE_LIMIT,
    Cursors,
    HistoryError,
    Plan,
    Row,
    Series,
    Source,
    TimeRange,
    next_begin,
    rows_in_range,
)

T = TypeVar("T")


class HistorySource(Protocol):
    """Netatmo's getmeasure and getroommeasure at scale=max. Rows come ascending; raises as
    `WeatherSource`, and `BadResponse` for an answer of neither optimize shape."""

    def fetch_measure(self, access_token: str, device_id: str, module_id: str | None,
                      types: Sequence[str], date_begin: int, date_end: int, limit: int
                      ) -> tuple[Row, ...]: ...

    def fetch_room_measure(self, access_token: str, home_id: str, room_id: str,
                           types: Sequence[str], date_begin: int, date_end: int, limit: int
                           ) -> tuple[Row, ...]: ...


class HistorySink(Protocol):
    """Where readings go until the output is assembled. `append` returns the series' size
    on disk afterwards; `checkpoint` makes the cursors and everything appended durable."""

    def append(self, series: Series, samples: Sequence[tuple[int, float]]) -> int: ...

    def checkpoint(self, cursors: Cursors) -> None: ...


class Calls(Protocol):
    """Runs one Netatmo request with an access token, under the account's budget, with the
    token retry and rate-limit waits of the call policy; raises `Stopped` when asked to."""

    def call(self, request: Callable[[str], T]) -> T: ...

    def recent(self) -> list[float]:
        """When the calls of the last hour went out (kept in the checkpoint)."""
        ...


class ProgressReport(Protocol):
    def page_done(self, source: Source, cursors: Cursors) -> None: ...

    def skipped(self, source: Source, reason: str) -> None:
        """Netatmo refused the source's history; the run goes on without it."""
        ...


class Backfill:
    def __init__(self, plan: Plan, span: TimeRange, cursors: Cursors, source: HistorySource,
                 sink: HistorySink, calls: Calls, progress: ProgressReport,
                 stop: threading.Event, limit: int = PAGE_LIMIT) -> None:
        self._plan = plan
        self._span = span
        self.cursors = cursors
        self._source = source
        self._sink = sink
        self._calls = calls
        self._progress = progress
        self._stop = stop
        self._limit = limit

    def run(self) -> None:
        """Fetch every page still missing; raises `Stopped`, or `HistoryError` when the
        authorization lacks a source's scope."""
        for source in self._plan.sources:
            while (begin := self.cursors.begins.get(source.key)) is not None:
                if self._stop.is_set():
                    raise Stopped()
                self._page(source, begin)

    def _page(self, source: Source, begin: int) -> None:
        end = self._span.end
        try:
            rows = self._calls.call(lambda token: fetch_rows(
                self._source, token, source, begin, end, self._limit))
        except MissingScope:
            raise HistoryError(
                f"Netatmo refuses the history of {source.title}: the authorization lacks "
                f"scope {source.scope}; authorize again with it (or drop it from --scope)"
            ) from None
        except ApiError as exc:
            # A module Netatmo no longer knows (code 9) or will not measure: the others
            # still have their history.
            self.cursors.begins[source.key] = None
            self.cursors.skipped[source.key] = str(exc)
            self._sink.checkpoint(self.cursors)
            self._progress.skipped(source, str(exc))
            return
        kept = rows_in_range(rows, begin, end)
        for index, series in enumerate(source.series):
            self.cursors.spooled[series.key] = self._sink.append(
                series, series_samples(kept, index))
        self.cursors.begins[source.key] = next_begin(begin, end, rows, self._limit)
        self.cursors.calls += 1
        self.cursors.recent_calls = self._calls.recent()
        self._sink.checkpoint(self.cursors)
        self._progress.page_done(source, self.cursors)


def fetch_rows(history: HistorySource, token: str, source: Source, begin: int, end: int,
               limit: int = PAGE_LIMIT) -> tuple[Row, ...]:
    """One page of a source's stored readings from `begin` to `end` (inclusive)."""
    first, second = source.ids
    if source.kind == "room":
        assert second is not None
        return history.fetch_room_measure(token, first, second, source.types, begin, end,
                                          limit)
    return history.fetch_measure(token, first, second, source.types, begin, end, limit)


def series_samples(rows: Sequence[Row], index: int) -> list[tuple[int, float]]:
    """The readings of one type; a null (or a missing value) is a hole and stays one."""
    samples = []
    for time, values in rows:
        value = values[index] if index < len(values) else None
        if value is not None:
            samples.append((time, value))
    return samples
