"""The history follower (SPEC 13): the service writes every reading Netatmo stored, at its
own time, to a receiver of Prometheus remote write, and fills every outage by itself.

Each cycle (at most every `interval`) plans the sources from the live state the service
already holds (the weather snapshot's stations, the Energy snapshot's homes: no discovery
call of its own) with `plan_history`, the backfill's planner, so that every reading goes out
under the live series' family and labels. Per source it pages getmeasure or getroommeasure
at scale=max from its checkpoint (or `lookback` ago the first time) to now, oldest first,
hands each page to the receiver, and only once the receiver took it advances and saves that
source's checkpoint: a crash or a stop at any point sends a page again (the same readings
with the same values), never skips one.

A receiver that may take the data later (unreachable, 429, 5xx) keeps the one page in
memory and is tried again with backoff (its Retry-After honoured); one that refuses the
data for good (outside its out-of-order window) is reported once per cycle with the
`backfill` command that brings those readings in as blocks, and the follower moves past
them; bad credentials or a receiver that is not enabled hold the page and wait long.

Calls go through the one call policy with the follower's own hourly share, so that the live
refresher and a running backfill keep theirs; in steady state a source costs one call per
interval. The follower runs on its own thread and publishes a `HistoryState` whole: scrapes
and pages never wait on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from types import MappingProxyType
from typing import Protocol

from netatmo_exporter.domain.call_policy import (
    HISTORY,
    POLLER_RETRIES,
    Backoff,
    CallBudget,
    CallPolicy,
    PollLoop,
    Stopped,
    event_wait,
)
from netatmo_exporter.domain.energy.model import HomeSetup
from netatmo_exporter.domain.errors import (
    ApiError,
    MissingScope,
    NetatmoError,
    PollCrashed,
    RateLimited,
)
from netatmo_exporter.domain.history.backfill import HistorySource, fetch_rows, series_samples
from netatmo_exporter.domain.history.plan import (
    PAGE_LIMIT,
    Plan,
    Series,
    Source,
    next_begin,
    plan_history,
    rows_in_range,
)
from netatmo_exporter.domain.history.remote_write import HistoryReceiver, ReceiverError
from netatmo_exporter.domain.history.when import format_when
from netatmo_exporter.domain.ports import AccessTokens, Clock, EventLog, Wait
from netatmo_exporter.domain.weather.model import Station

HOURLY_SHARE = 100
"""Of Netatmo's 500 calls per user and hour: the backfill takes 250 by default, the live
refresher and the Energy poller need far fewer than the rest. Steady state costs one call
per source per interval (20 an hour for ten modules at 30 minutes); a day's outage costs
one page per source."""
NOT_READY_WAIT = 5.0
"""While the live state has no stations yet (the first refresh is under way)."""
FIRST_RECEIVER_WAIT = 5.0
MAX_RECEIVER_WAIT = 300.0
LONG_RECEIVER_WAIT = 600.0
"""At least this long after a refusal only the operator can fix (credentials, receiver not
enabled): trying every few seconds would only fill the receiver's log."""
NETATMO_RETRY_WAIT = 60.0
CALL_SPACING = 1.0
"""Seconds between two calls of a catch-up at least: at most 10 of Netatmo's 50 calls in
any 10 s, so that the live refresher and a backfill never wait for the follower."""
HOLD_REASONS = frozenset({"unauthorized", "not_enabled"})

Checkpoints = Mapping[str, int]
"""Per source (by `checkpoint_key`), the time of the newest reading the receiver took (or
that the follower moved past because the receiver refused it for good)."""


class CheckpointError(Exception):
    """The checkpoints could not be saved; the message names the file and the cause."""


class CheckpointStore(Protocol):
    """Durable home of the checkpoints. `load` returns {} when there are none yet (an
    unusable file is moved aside and reported by the store, never raised); `save` is
    atomic (the old or the new checkpoints afterwards, never a mix) and raises
    `CheckpointError`."""

    def load(self) -> dict[str, int]: ...

    def save(self, checkpoints: Checkpoints) -> None: ...


def checkpoint_key(source: Source) -> str:
    """A source's stable name: its device and module ids, or its home and room ids, never
    the planner's position, which changes when a module is added or renamed."""
    first, second = source.ids
    return f"{source.kind}:{first}/{second or first}"


@dataclass(frozen=True, slots=True)
class SourceProgress:
    key: str
    title: str
    written_until: int | None = None
    """The newest reading time written (None: nothing yet)."""
    last_error: str | None = None
    complete_until: int | None = None
    """Every reading Netatmo had stored up to this time is written (the end of the last
    look that went through; None before one did since the start)."""

    @property
    def up_to_date(self) -> int | None:
        """How far the history of this source is written: a module that stopped storing
        readings is not behind once the follower looked."""
        known = [t for t in (self.written_until, self.complete_until) if t is not None]
        return max(known) if known else None


def _no_counts() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class HistoryState:
    """What scrapes and the status page show of the follower, published whole."""

    sources: tuple[SourceProgress, ...] = ()
    samples_written: int = 0
    write_errors: Mapping[str, int] = field(default_factory=_no_counts)
    """Receiver refusals by `RECEIVER_REASONS` reason."""
    last_write_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    next_poll_at: float | None = None
    generation: int = 0

    def oldest_checkpoint(self) -> int | None:
        """How far the history of the source furthest behind is written."""
        known = [s.up_to_date for s in self.sources if s.up_to_date is not None]
        return min(known) if known else None


@dataclass(frozen=True, slots=True)
class _Page:
    """Readings of one source fetched and not yet taken by the receiver."""

    key: str
    batch: tuple[tuple[Series, tuple[tuple[int, float], ...]], ...]
    first: int
    last: int
    end: int
    """The end of the range asked for."""
    final: bool
    """The source's last page of this cycle."""

    @property
    def samples(self) -> int:
        return sum(len(samples) for _, samples in self.batch)


@dataclass
class _ReceiverRefusal:
    first: int
    last: int
    reason: str
    message: str


class HistoryFollower:
    def __init__(self, tokens: AccessTokens, history: HistorySource, receiver: HistoryReceiver,
                 store: CheckpointStore, clock: Clock, log: EventLog, *, lookback: float,
                 interval: float, stations: Callable[[], Sequence[Station] | None],
                 homes: Callable[[], Sequence[HomeSetup] | None] | None = None,
                 budget: CallBudget | None = None, wait: Wait = event_wait,
                 hourly_share: int = HOURLY_SHARE) -> None:
        self._history = history
        self._receiver = receiver
        self._store = store
        self._lookback = lookback
        self._interval = interval
        self._clock = clock
        self._log = log
        self._stations = stations
        self._homes = homes
        self.loop = PollLoop(clock, wait)
        """`loop.wake()` when a new token arrives; `loop.stop()` ends the follower."""
        self._calls = CallPolicy(tokens, budget or CallBudget(), clock, self.loop,
                                 caller=HISTORY, hourly_share=hourly_share,
                                 retries=POLLER_RETRIES)
        self._netatmo_backoff = Backoff()
        self._last_call = -math.inf
        self._receiver_failures = 0
        self._checkpoints: dict[str, int] | None = None
        self._pending: _Page | None = None
        self._due: list[Source] = []
        self._cycle_started: float | None = None
        self._refused_scopes: set[str] = set()
        self._refused: _ReceiverRefusal | None = None
        self._reported: dict[str, str] = {}
        self._titles: dict[str, str] = {}
        self._complete: dict[str, int] = {}
        self._source_errors: dict[str, str] = {}
        self._state = HistoryState()

    def state(self) -> HistoryState:
        return self._state

    def run(self, ready: Callable[[], bool] = lambda: True) -> None:
        """Follows until `loop.stop()`; while not `ready()` (unauthorized), waits for a wake."""
        try:
            self.loop.run(self.poll_once, ready=ready, idle=self._interval,
                          crashed=self._crashed)
        except Exception:
            # The service stops without waiting for a call in flight and closes the clients
            # under it: whatever that call raises then is no failure to report.
            if not self.loop.stopped:
                raise

    def _crashed(self, exc: PollCrashed) -> float:
        self._log.error("history_crashed", error=str(exc), next_try_in=self._interval)
        return self._interval

    def poll_once(self) -> float:
        """Sends what is pending, then goes on with the cycle's sources; returns how long to
        wait before the next poll."""
        with self.loop.lock:
            if self.loop.take_news():
                self._refused_scopes.clear()
            wait = self._poll()
            if self._refused is not None:
                self._report_refused(self._refused)
                self._refused = None
            self._publish(next_poll_at=self._clock.now() + wait)
            return wait

    def _poll(self) -> float:
        checkpoints = self._loaded()
        if (page := self._pending) is not None:
            if (wait := self._deliver(page)) is not None:
                return wait
            if page.final and self._due and checkpoint_key(self._due[0]) == page.key:
                self._due.pop(0)
        if not self._due:
            now = self._clock.now()
            if self._cycle_started is not None and now < self._cycle_started + \
                    self._interval:
                return self._cycle_started + self._interval - now
            plan = self._plan()
            if plan is None:
                return NOT_READY_WAIT
            self._cycle_started = now
            self._due = list(plan.sources)
        while self._due:
            source = self._due[0]
            if source.scope not in self._refused_scopes:
                wait = self._follow(source, checkpoints)
                if wait is not None:
                    return wait
            self._due.pop(0)
        self._netatmo_backoff.reset()
        assert self._cycle_started is not None
        return max(0.0, self._cycle_started + self._interval - self._clock.now())

    def _loaded(self) -> dict[str, int]:
        if self._checkpoints is None:
            self._checkpoints = dict(self._store.load())
        return self._checkpoints

    def _plan(self) -> Plan | None:
        """The sources of the live state; None while the first weather refresh (or Energy
        poll, with `read_thermostat`) has not answered yet."""
        stations = self._stations()
        homes = self._homes() if self._homes is not None else ()
        if stations is None or homes is None:
            return None
        plan = plan_history(stations, homes)
        self._titles = {checkpoint_key(source): source.title for source in plan.sources}
        return plan

    def _follow(self, source: Source, checkpoints: Mapping[str, int]) -> float | None:
        """Pages one source up to now; a wait when the cycle must pause, None when done."""
        key = checkpoint_key(source)
        written = checkpoints.get(key)
        assert self._cycle_started is not None
        begin = (written + 1 if written is not None
                 else math.ceil(self._cycle_started - self._lookback))
        while True:
            end = math.floor(self._clock.now())
            if begin > end:
                return None
            if self.loop.stopped:
                raise Stopped()
            if (spacing := self._last_call + CALL_SPACING - self._clock.now()) > 0:
                self.loop.pause(spacing, "the history follower's pace")
                end = math.floor(self._clock.now())
            self._last_call = self._clock.now()
            try:
                rows = self._calls.call(partial(fetch_rows, self._history, source=source,
                                                begin=begin, end=end))
            except NetatmoError as exc:
                return self._netatmo_failed(source, exc)
            self._source_errors.pop(key, None)
            self._recovered("netatmo")
            kept = rows_in_range(rows, begin, end)
            following = next_begin(begin, end, rows, PAGE_LIMIT)
            if kept:
                page = _Page(key, tuple((series, tuple(series_samples(kept, index)))
                                        for index, series in enumerate(source.series)),
                             kept[0][0], kept[-1][0], end, following is None)
                if (wait := self._deliver(page)) is not None:
                    return wait
            if following is None:
                self._complete[key] = end
                self._publish()
                return None
            begin = following

    def _netatmo_failed(self, source: Source, exc: NetatmoError) -> float | None:
        key = checkpoint_key(source)
        if isinstance(exc, MissingScope):
            self._refused_scopes.add(source.scope)
            self._report("netatmo", "history_scope_missing", f"{exc}", scope=source.scope)
            return None
        if isinstance(exc, ApiError):
            # A module Netatmo no longer knows or will not measure: the others go on.
            self._source_errors[key] = str(exc)
            self._report(f"source {key}", "history_source_refused", str(exc),
                         source=source.title)
            return None
        wait = min(self._interval, NETATMO_RETRY_WAIT)
        if isinstance(exc, RateLimited):
            wait = self._netatmo_backoff.after(exc, wait)
        self._report("netatmo", "history_fetch_failed", str(exc), reason=exc.reason,
                     next_try_in=round(wait, 1))
        return wait

    def _deliver(self, page: _Page) -> float | None:
        """Writes a page; advances its source's checkpoint once the receiver took it (or
        refused it for good). A wait when the page is kept for later, None otherwise."""
        if page.samples:
            try:
                accepted = self._receiver.write(page.batch)
            except ReceiverError as exc:
                return self._receiver_failed(page, exc)
            self._state_written(accepted)
        self._pending = None
        self._receiver_failures = 0
        self._recovered("receiver")
        if page.final:
            self._complete[page.key] = page.end
        self._advance(page)
        return None

    def _receiver_failed(self, page: _Page, exc: ReceiverError) -> float | None:
        counts = self._state.write_errors
        self._state = replace(self._state, write_errors=MappingProxyType(
            {**counts, exc.reason: counts.get(exc.reason, 0) + 1}))
        if exc.reason in HOLD_REASONS or exc.retry:
            self._pending = page
            self._receiver_failures += 1
            if exc.reason in HOLD_REASONS:
                wait = max(self._interval, LONG_RECEIVER_WAIT)
            else:
                wait = min(MAX_RECEIVER_WAIT, max(FIRST_RECEIVER_WAIT, self._interval),
                           FIRST_RECEIVER_WAIT * 2.0 ** (self._receiver_failures - 1))
            wait = max(wait, exc.retry_after or 0.0)
            self._report("receiver", "history_write_failed", str(exc), reason=exc.reason,
                         kept_readings=page.samples, next_try_in=round(wait, 1))
            return wait
        self._state_written(exc.accepted)  # a receiver may store part of a batch it refuses
        refused = self._refused
        if refused is None:
            self._refused = _ReceiverRefusal(page.first, page.last, exc.reason,
                                             exc.problem)
        else:
            refused.first, refused.last = (min(refused.first, page.first),
                                           max(refused.last, page.last))
        self._pending = None
        self._advance(page)
        return None

    def _report_refused(self, refused: _ReceiverRefusal) -> None:
        command = (f"netatmo-exporter backfill --from {format_when(refused.first)} "
                   f"--to {format_when(refused.last)} --output history.om")
        message = (f"{refused.message}; the readings from {format_when(refused.first)} to "
                   f"{format_when(refused.last)} are skipped: `{command}` brings them in as "
                   "blocks (docs/history.md)")
        self._log.warning("history_readings_refused", reason=refused.reason,
                          error=refused.message, skipped_from=format_when(refused.first),
                          skipped_to=format_when(refused.last), backfill=command)
        self._state = replace(self._state, last_error=message,
                              last_error_at=self._clock.now())

    def _advance(self, page: _Page) -> None:
        checkpoints = self._loaded()
        checkpoints[page.key] = max(page.last, checkpoints.get(page.key, page.last))
        try:
            self._store.save(checkpoints)
        except CheckpointError as exc:
            # Kept in memory: after a restart the same readings go out again, with the same
            # values, which a receiver takes as nothing new.
            self._report("checkpoint", "history_checkpoint_not_saved", str(exc))
        else:
            self._recovered("checkpoint")
        self._publish()

    def _state_written(self, accepted: int) -> None:
        if accepted > 0:
            self._state = replace(self._state,
                                  samples_written=self._state.samples_written + accepted,
                                  last_write_at=self._clock.now())

    def _report(self, topic: str, event: str, message: str, **fields: object) -> None:
        """One log line per distinct failure of a topic, not one per retry."""
        if self._reported.get(topic) != message:
            self._reported[topic] = message
            self._log.warning(event, error=message, **fields)
        self._state = replace(self._state, last_error=message,
                              last_error_at=self._clock.now())

    def _recovered(self, topic: str) -> None:
        if self._reported.pop(topic, None) is not None:
            self._log.info("history_recovered", what=topic)

    def _publish(self, next_poll_at: float | None = None) -> None:
        checkpoints = self._checkpoints or {}
        sources = tuple(SourceProgress(key, title, checkpoints.get(key),
                                       self._source_errors.get(key), self._complete.get(key))
                        for key, title in self._titles.items())
        self._state = replace(
            self._state, sources=sources,
            next_poll_at=self._state.next_poll_at if next_poll_at is None else next_poll_at,
            generation=self._state.generation + 1)


