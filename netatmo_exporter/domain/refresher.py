"""The background loop that keeps a fresh snapshot, and the state scrapes render."""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from netatmo_exporter.domain.authorization import TokenManager
from netatmo_exporter.domain.errors import (
    AccessTokenRejected,
    MissingScope,
    NetatmoError,
    NotAuthorized,
    RateLimited,
)
from netatmo_exporter.domain.model import DeviceKind, Snapshot, Station
from netatmo_exporter.domain.ports import Clock, EventLog, WeatherSource
from netatmo_exporter.domain.schedule import DeviceCadence, RefreshMode, UploadPlanner

STATIONS_SCOPE = "read_station"
HOMECOACH_SCOPE = "read_homecoach"
MAX_BACKOFF = 3600.0
MIN_RENEWAL_GAP = 1.0
TOKEN_FILE_POLL = 5.0
FULL_FETCH_EVERY = 3600.0
"""In aligned mode, a call narrowed to one device is widened to all at least this often, so
new and removed devices show up."""
SCOPE_KINDS: dict[str, DeviceKind] = {STATIONS_SCOPE: "station", HOMECOACH_SCOPE: "homecoach"}

Targets = dict[str, str | None]
"""Scopes to call, each with the one device it is narrowed to, or None for all devices."""


@dataclass(frozen=True, slots=True)
class Answer:
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


def _event_wait(event: threading.Event, timeout: float) -> object:
    return event.wait(timeout)


class Refresher:
    """Fetches data at start, right after a token appears, then on the stations' rhythm
    (aligned mode: just after each device's next upload should be visible, see
    `UploadPlanner`) or once per interval (fixed mode).

    Scrapes never call Netatmo: they read `snapshot`, `status` and `cadences`, each swapped
    whole. Rate limiting doubles the wait (up to an hour) instead of retrying sooner; after
    any failure the next call waits as in fixed mode, whatever the rhythm says.
    """

    def __init__(
        self,
        tokens: TokenManager,
        source: WeatherSource,
        settings: RefreshSettings,
        clock: Clock,
        log: EventLog,
        wait: Callable[[threading.Event, float], object] = _event_wait,
    ) -> None:
        self._tokens = tokens
        self._source = source
        self._settings = settings
        self._clock = clock
        self._log = log
        self._wait = wait
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._rate_limit_streak = 0
        self._skipped_scopes: set[str] = set()
        self._fresh_authorization = False
        self._planner = UploadPlanner(settings.interval)
        self._last_call: dict[str, float] = {}
        self._last_full: dict[str, float] = {}
        self.cadences: tuple[DeviceCadence, ...] = ()
        self.snapshot: Snapshot | None = None
        self.status = RefreshStatus()
        self.error_counts: Counter[str] = Counter()
        self.version = 0

    @property
    def settings(self) -> RefreshSettings:
        return self._settings

    def wake(self) -> None:
        """A new token arrived: fetch now rather than at the end of the interval."""
        self._fresh_authorization = True
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        """Fetch data every interval; between fetches, renew the access token when it falls
        due, so it never lapses while the data waits for its next turn."""
        next_fetch = self._clock.now()
        renew_not_before = next_fetch
        while not self._stop.is_set():
            self._wake.clear()
            if not self._tokens.authorized:
                # Authorized, every token use checks the file; unauthorized, nothing else does.
                self._tokens.reload_if_replaced()
            now = self._clock.now()
            if self._fresh_authorization or now >= next_fetch:
                wait = self.refresh_once() if self._tokens.authorized else self._settings.interval
                next_fetch = self._clock.now() + wait
            elif self._renewal_due(now, renew_not_before):
                try:
                    self._tokens.access_token()
                    renew_not_before = self._clock.now() + MIN_RENEWAL_GAP
                except NetatmoError as exc:
                    renew_not_before = next_fetch
                    self._log.warning("token_renewal_failed", reason=exc.reason, error=str(exc),
                                      next_try_in=round(max(0.0, next_fetch - now), 1))
            self._wait(self._wake, self._time_to_next(next_fetch, renew_not_before))

    def _renewal_due(self, now: float, renew_not_before: float) -> bool:
        due_in = self._tokens.refresh_due_in(now)
        return due_in is not None and due_in <= 0 and now >= renew_not_before

    def _time_to_next(self, next_fetch: float, renew_not_before: float) -> float:
        now = self._clock.now()
        wait = next_fetch - now
        if not self._tokens.authorized:
            wait = min(wait, TOKEN_FILE_POLL)  # a `login` may write the token file meanwhile
        due_in = self._tokens.refresh_due_in(now)
        if due_in is not None:
            wait = min(wait, max(due_in, renew_not_before - now))
        return max(wait, 0.0)

    def refresh_once(self) -> float:
        """One data call (or one per endpoint); returns how long to wait before the next."""
        with self._lock:
            full = (self._fresh_authorization or self.snapshot is None
                    or self._settings.mode == "fixed")
            if self._fresh_authorization:
                self._fresh_authorization = False
                self._skipped_scopes.clear()
                self._rate_limit_streak = 0
            started = self._clock.now()
            targets = None if full else self._targets(started)
            try:
                fetched = self._fetch_all(targets)
            except NetatmoError as exc:
                for scope, device_id in (targets or {}).items():
                    if device_id is not None:
                        self._last_full.pop(scope, None)  # a removed device: ask for all
                return self._record_failure(started, exc)
            self._observe(fetched, started)
            stations = self._merge(fetched)
            self.snapshot = Snapshot(stations, fetched_at=started,
                                     skipped=tuple(sorted(self._skipped_scopes)))
            self._rate_limit_streak = 0
            wait = self._next_wait(started)
            end = self._clock.now()
            self.status = RefreshStatus(started, end - started, ok=True, next_call=end + wait)
            self.cadences = self._planner.cadences()
            self.version += 1
            self._log.info("refresh_ok", stations=len(stations),
                           modules=sum(len(s.all_modules) for s in stations),
                           endpoints=",".join(sorted(fetched)),
                           took=round(self.status.duration, 3), next_in=round(wait, 1))
            return wait

    def _targets(self, now: float) -> Targets:
        """What falls due now: the devices the planner names, and endpoints without a known
        device once per interval. A single device is asked for alone, unless its endpoint
        has not been asked for all of its devices for an hour."""
        due = self._planner.due(now)
        targets: Targets = {}
        for scope in self._wanted_scopes():
            kind = SCOPE_KINDS[scope]
            known = self._planner.known(kind)
            if kind in due:
                ids = due[kind]
                widen = (len(ids) > 1 or len(known) == 1
                         or now - self._last_full.get(scope, -math.inf) >= FULL_FETCH_EVERY)
                targets[scope] = None if widen else ids[0]
            elif not known and now >= self._endpoint_due(scope):
                targets[scope] = None
        return targets or dict.fromkeys(self._wanted_scopes())

    def _next_wait(self, now: float) -> float:
        interval = self._settings.interval
        if self._settings.mode == "fixed":
            return interval
        candidates = [self._endpoint_due(scope) for scope in self._wanted_scopes()
                      if not self._planner.known(SCOPE_KINDS[scope])]
        planned = self._planner.next_call()
        if planned is not None:
            candidates.append(planned)
        return max(0.0, min(candidates, default=now + interval) - self._clock.now())

    def _endpoint_due(self, scope: str) -> float:
        """An endpoint without a known device is asked once per interval, for new ones."""
        return self._last_call.get(scope, -math.inf) + self._settings.interval

    def _observe(self, fetched: dict[str, Answer], called_at: float) -> None:
        for scope, answer in fetched.items():
            self._last_call[scope] = called_at
            if answer.complete:
                self._last_full[scope] = called_at
            if self._settings.mode == "aligned":
                self._planner.observe(SCOPE_KINDS[scope],
                                      [(s.id, s.last_status_store)
                                       for s in answer.stations],
                                      called_at, answer.complete)

    def _merge(self, fetched: dict[str, Answer]) -> tuple[Station, ...]:
        """The new answers over the previous snapshot: an endpoint asked for all devices
        replaces its devices, one asked for one device replaces that device only."""
        previous = () if self.snapshot is None else self.snapshot.stations
        merged: list[Station] = []
        for scope, kind in SCOPE_KINDS.items():
            before = [s for s in previous if s.kind == kind]
            if scope in self._skipped_scopes:
                continue
            if scope not in fetched:
                merged.extend(before)
                continue
            answer = {s.id: s for s in fetched[scope].stations}
            if not fetched[scope].complete:
                merged.extend(answer.pop(s.id, s) for s in before)
            merged.extend(answer.values())
        return _unique(merged)

    def _record_failure(self, started: float, exc: NetatmoError) -> float:
        wait = self._settings.interval
        backoff_until = None
        if isinstance(exc, RateLimited):
            self._rate_limit_streak += 1
            wait = min(MAX_BACKOFF, max(wait * 2 ** self._rate_limit_streak,
                                        exc.retry_after or 0.0))
            backoff_until = started + wait
        if not isinstance(exc, NotAuthorized):
            self.error_counts[exc.reason] += 1
        end = self._clock.now()
        self.status = RefreshStatus(started, end - started, ok=False,
                                    error_reason=exc.reason, error_message=str(exc),
                                    backoff_until=backoff_until, next_call=end + wait)
        self.version += 1
        self._log.error("refresh_failed", reason=exc.reason, error=str(exc),
                        next_try_in=round(wait, 1))
        return wait

    def _wanted_scopes(self) -> list[str]:
        granted = self._tokens.granted_scope()
        wanted = []
        for scope in (STATIONS_SCOPE, HOMECOACH_SCOPE):
            if scope not in self._settings.scopes or scope in self._skipped_scopes:
                continue
            if granted is not None and scope not in granted:
                self._skip(scope, "the authorization does not include this scope: authorize "
                                  "again with it, or drop it from --scope")
                continue
            wanted.append(scope)
        return wanted

    def _skip(self, scope: str, reason: str) -> None:
        """Stop asking an endpoint the token may not read, and say so once."""
        self._skipped_scopes.add(scope)
        self._planner.forget(SCOPE_KINDS[scope])
        self._tokens.mark_missing_scope()
        self._log.warning("endpoint_skipped", scope=scope, reason=reason)

    def _fetch_all(self, targets: Targets | None) -> dict[str, Answer]:
        """Calls the targeted endpoints (all wanted ones when `targets` is None)."""
        wanted = self._wanted_scopes()
        if not wanted and not self._energy_only():
            self._tokens.mark_missing_scope()
            raise MissingScope("any data endpoint")
        if targets is None:
            targets = dict.fromkeys(wanted)
        fetched: dict[str, Answer] = {}
        for scope in wanted:
            if scope not in targets:
                continue
            device_id = targets[scope]
            try:
                answer = self._fetch_with_fresh_token(scope, device_id)
            except MissingScope as exc:
                self._skip(scope, str(exc))
                continue
            fetched[scope] = Answer(answer, complete=device_id is None)
        if not fetched and not self._wanted_scopes() and not self._energy_only():
            # Every endpoint refused for want of scope: nothing was read, so not up.
            raise MissingScope("any data endpoint")
        return fetched

    def _energy_only(self) -> bool:
        """Only Energy asked for: no weather endpoint is wanted, and that is no fault."""
        return not {STATIONS_SCOPE, HOMECOACH_SCOPE} & set(self._settings.scopes)

    def _fetch_with_fresh_token(self, scope: str, device_id: str | None) -> tuple[Station, ...]:
        """A rejected access token is refreshed and the call tried once more."""
        access_token = self._tokens.access_token()
        try:
            return self._fetch(scope, access_token, device_id)
        except AccessTokenRejected:
            self._tokens.reject_access_token(access_token)
        return self._fetch(scope, self._tokens.access_token(), device_id)

    def _fetch(self, scope: str, access_token: str, device_id: str | None
               ) -> tuple[Station, ...]:
        if scope == STATIONS_SCOPE:
            return self._source.fetch_stations(access_token, self._settings.favorites,
                                               device_id)
        return self._source.fetch_homecoaches(access_token, device_id)


def _unique(stations: list[Station]) -> tuple[Station, ...]:
    seen: dict[str, Station] = {}
    for station in stations:
        if station.id not in seen or seen[station.id].favorite:
            seen[station.id] = station
    return tuple(seen.values())
