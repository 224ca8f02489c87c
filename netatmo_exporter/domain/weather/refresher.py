"""The background loop that keeps a fresh weather snapshot, and the state scrapes render."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from types import MappingProxyType

from netatmo_exporter.domain.authorization.scopes import (
    HOMECOACH_SCOPE,
    STATIONS_SCOPE,
    WEATHER_SCOPES,
    RefusedScopes,
)
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.call_policy import (
    Backoff,
    BudgetWaits,
    CallBudget,
    event_wait,
    poller_calls,
)
from netatmo_exporter.domain.errors import (
    MissingScope,
    NetatmoError,
    NotAuthorized,
    RateLimited,
)
from netatmo_exporter.domain.ports import Clock, EventLog, Wait, WeatherSource
from netatmo_exporter.domain.weather.model import DeviceKind, Snapshot, Station, unique_stations
from netatmo_exporter.domain.weather.schedule import DeviceCadence, RefreshMode, UploadPlanner

FULL_FETCH_EVERY = 3600.0
"""In aligned mode, a call narrowed to one device is widened to all at least this often, so
new and removed devices show up."""
SCOPE_KINDS: dict[str, DeviceKind] = {STATIONS_SCOPE: "station", HOMECOACH_SCOPE: "homecoach"}

Targets = dict[str, str | None]
"""Scopes to call, each with the one device it is narrowed to, or None for all devices."""


@dataclass(frozen=True, slots=True)
class EndpointAnswer:
    """What one endpoint returned; `complete` when it was asked for all its devices."""

    stations: tuple[Station, ...]
    complete: bool


@dataclass(frozen=True, slots=True)
class RefreshStatus:
    attempted_at: float | None = None
    duration: float = 0.0
    ok: bool = False
    error_reason: str | None = None
    error_message: str | None = None
    backoff_until: float | None = None
    next_call: float | None = None


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    interval: float
    scopes: tuple[str, ...]
    favorites: bool
    mode: RefreshMode = "aligned"


def _no_counts() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class WeatherState:
    """Everything scrapes and pages show of the weather data, published whole: a reader
    that takes one `WeatherState` sees a snapshot with the status of the same fetch.
    `generation` grows with every publication (the metrics cache keys on it)."""

    settings: RefreshSettings
    snapshot: Snapshot | None = None
    status: RefreshStatus = RefreshStatus()
    cadences: tuple[DeviceCadence, ...] = ()
    error_counts: Mapping[str, int] = field(default_factory=_no_counts)
    generation: int = 0


class Refresher:
    """Fetches data at start, right after a token appears, then on the stations' rhythm
    (aligned mode, the default: just after each device's next upload should be visible,
    see `UploadPlanner`) or once per interval (fixed mode).

    Scrapes never call Netatmo: they render `state()`, published whole after each fetch.
    Calls follow the `CallPolicy` (budget, one retry with a fresh token); rate limiting
    waits as `Backoff` says instead of retrying sooner; after any failure the next call
    waits as in fixed mode, whatever the rhythm says. The access token is renewed by
    `TokenRenewal`, not here.
    """

    def __init__(
        self,
        tokens: TokenManager,
        source: WeatherSource,
        settings: RefreshSettings,
        clock: Clock,
        log: EventLog,
        wait: Wait = event_wait,
        budget: CallBudget | None = None,
        waits: BudgetWaits | None = None,
    ) -> None:
        self._tokens = tokens
        self._source = source
        self._settings = settings
        self._clock = clock
        self._log = log
        self.loop, self._calls = poller_calls(tokens, clock, wait, budget, waits, "weather")
        """`loop.wake()` when a new token arrives: fetch now, not at the end of the wait."""
        self._backoff = Backoff()
        self._refused = RefusedScopes(tokens, log)
        self._planner = UploadPlanner(settings.interval)
        self._last_call: dict[str, float] = {}
        self._last_full: dict[str, float] = {}
        self._state = WeatherState(settings)

    def state(self) -> WeatherState:
        return self._state

    def run(self) -> None:
        """Fetches until `loop.stop()`; while unauthorized, waits for `loop.wake()`."""
        self.loop.run(self.poll_once, ready=lambda: self._tokens.authorized,
                      idle=self._settings.interval,
                      crashed=lambda exc: self._publish_failure(self._clock.now(), exc))

    def poll_once(self) -> float:
        """One data call (or one per endpoint); returns how long to wait before the next."""
        with self.loop.lock:
            fresh_authorization = self.loop.take_news()
            full = (fresh_authorization or self._state.snapshot is None
                    or self._settings.mode == "fixed")
            if fresh_authorization:
                self._refused.clear()
                self._backoff.reset()
            self._refused.refuse_ungranted(self._configured())
            for scope in self._configured():
                if scope in self._refused:
                    self._planner.forget(SCOPE_KINDS[scope])
            wanted = self._wanted_scopes()
            started = self._clock.now()
            targets = None if full else self._targets(wanted, started)
            try:
                fetched = self._fetch_all(wanted, targets)
            except NetatmoError as exc:
                for scope, device_id in (targets or {}).items():
                    if device_id is not None:
                        self._last_full.pop(scope, None)  # a removed device: ask for all
                return self._publish_failure(started, exc)
            self._observe(fetched, started)
            stations = self._merge(fetched)
            self._backoff.reset()
            wait = self._next_wait([s for s in wanted if s not in self._refused], started)
            end = self._clock.now()
            # One assignment: a reader sees this fetch's snapshot with its status, or neither.
            self._state = replace(
                self._state, snapshot=Snapshot(stations, fetched_at=started,
                                               skipped=self._refused.names()),
                status=RefreshStatus(started, end - started, ok=True, next_call=end + wait),
                cadences=self._planner.cadences(), generation=self._state.generation + 1)
            self._log.info("refresh_ok", stations=len(stations),
                           modules=sum(len(s.all_modules) for s in stations),
                           endpoints=",".join(sorted(fetched)),
                           took=round(end - started, 3), next_in=round(wait, 1))
            return wait

    def _targets(self, wanted: list[str], now: float) -> Targets:
        """What falls due now: the devices the planner names, and endpoints without a known
        device once per interval. A single device is asked for alone, unless its endpoint
        has not been asked for all of its devices for an hour."""
        due = self._planner.due(now)
        targets: Targets = {}
        for scope in wanted:
            kind = SCOPE_KINDS[scope]
            known = self._planner.known(kind)
            if kind in due:
                ids = due[kind]
                widen = (len(ids) > 1 or len(known) == 1
                         or now - self._last_full.get(scope, -math.inf) >= FULL_FETCH_EVERY)
                targets[scope] = None if widen else ids[0]
            elif not known and now >= self._endpoint_due(scope):
                targets[scope] = None
        return targets or dict.fromkeys(wanted)

    def _next_wait(self, wanted: list[str], now: float) -> float:
        interval = self._settings.interval
        if self._settings.mode == "fixed":
            return interval
        candidates = [self._endpoint_due(scope) for scope in wanted
                      if not self._planner.known(SCOPE_KINDS[scope])]
        planned = self._planner.next_call()
        if planned is not None:
            candidates.append(planned)
        return max(0.0, min(candidates, default=now + interval) - self._clock.now())

    def _endpoint_due(self, scope: str) -> float:
        """An endpoint without a known device is asked once per interval, for new ones."""
        return self._last_call.get(scope, -math.inf) + self._settings.interval

    def _observe(self, fetched: dict[str, EndpointAnswer], called_at: float) -> None:
        for scope, answer in fetched.items():
            self._last_call[scope] = called_at
            if answer.complete:
                self._last_full[scope] = called_at
            if self._settings.mode == "aligned":
                self._planner.observe(SCOPE_KINDS[scope],
                                      [(s.id, s.last_status_store)
                                       for s in answer.stations],
                                      called_at, answer.complete)

    def _merge(self, fetched: dict[str, EndpointAnswer]) -> tuple[Station, ...]:
        """The new answers over the previous snapshot: an endpoint asked for all devices
        replaces its devices, one asked for one device replaces that device only."""
        previous = () if self._state.snapshot is None else self._state.snapshot.stations
        merged: list[Station] = []
        for scope, kind in SCOPE_KINDS.items():
            before = [s for s in previous if s.kind == kind]
            if scope in self._refused:
                continue
            if scope not in fetched:
                merged.extend(before)
                continue
            answer = {s.id: s for s in fetched[scope].stations}
            if not fetched[scope].complete:
                merged.extend(answer.pop(s.id, s) for s in before)
            merged.extend(answer.values())
        return unique_stations(merged)

    def _publish_failure(self, started: float, exc: NetatmoError) -> float:
        wait = self._settings.interval
        backoff_until = None
        if isinstance(exc, RateLimited):
            wait = self._backoff.after(exc, wait)
            backoff_until = started + wait
        counts = self._state.error_counts
        if not isinstance(exc, NotAuthorized):
            # A new mapping, never one a scrape may be reading.
            counts = MappingProxyType({**counts, exc.reason: counts.get(exc.reason, 0) + 1})
        end = self._clock.now()
        self._state = replace(
            self._state, status=RefreshStatus(started, end - started, ok=False,
                                              error_reason=exc.reason, error_message=str(exc),
                                              backoff_until=backoff_until, next_call=end + wait),
            error_counts=counts, generation=self._state.generation + 1)
        self._log.error("refresh_failed", reason=exc.reason, error=str(exc),
                        next_try_in=round(wait, 1))
        return wait

    def _configured(self) -> tuple[str, ...]:
        return tuple(scope for scope in WEATHER_SCOPES if scope in self._settings.scopes)

    def _wanted_scopes(self) -> list[str]:
        """The weather scopes to call: configured and not refused. A query."""
        return [scope for scope in self._configured() if scope not in self._refused]

    def _fetch_all(self, wanted: list[str], targets: Targets | None) -> dict[str, EndpointAnswer]:
        """Calls the targeted endpoints (all wanted ones when `targets` is None)."""
        energy_only = not self._configured()
        if not wanted and not energy_only:
            raise MissingScope("any data endpoint")
        if targets is None:
            targets = dict.fromkeys(wanted)
        fetched: dict[str, EndpointAnswer] = {}
        for scope in wanted:
            if scope not in targets:
                continue
            device_id = targets[scope]
            try:
                answer = self._calls.call(partial(self._fetch, scope, device_id=device_id))
            except MissingScope as exc:
                self._refused.refuse(scope, str(exc))
                self._planner.forget(SCOPE_KINDS[scope])
                continue
            fetched[scope] = EndpointAnswer(answer, complete=device_id is None)
        if not fetched and not energy_only and all(s in self._refused for s in wanted):
            # Every endpoint refused for want of scope: nothing was read, so not up.
            raise MissingScope("any data endpoint")
        return fetched

    def _fetch(self, scope: str, access_token: str, device_id: str | None
               ) -> tuple[Station, ...]:
        if scope == STATIONS_SCOPE:
            return self._source.fetch_stations(access_token, self._settings.favorites,
                                               device_id)
        return self._source.fetch_homecoaches(access_token, device_id)
