"""The background loop that keeps a fresh snapshot, and the state scrapes render."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from netatmo_exporter.domain.authorization import TokenManager
from netatmo_exporter.domain.errors import (
    AccessTokenRejected,
    MissingScope,
    NetatmoError,
    NotAuthorized,
    RateLimited,
)
from netatmo_exporter.domain.model import Snapshot, Station
from netatmo_exporter.domain.ports import Clock, EventLog, WeatherSource

STATIONS_SCOPE = "read_station"
HOMECOACH_SCOPE = "read_homecoach"
MAX_BACKOFF = 3600.0
MIN_RENEWAL_GAP = 1.0
TOKEN_FILE_POLL = 5.0


@dataclass(frozen=True, slots=True)
class RefreshStatus:
    attempted_at: float | None = None
    duration: float = 0.0
    ok: bool = False
    error_reason: str | None = None
    error_message: str | None = None
    backoff_until: float | None = None


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    interval: float
    scopes: tuple[str, ...]
    favorites: bool


class Refresher:
    """Fetches data at start, right after a token appears, then once per interval.

    Scrapes never call Netatmo: they read `snapshot` and `status`, both swapped whole.
    Rate limiting doubles the wait (up to an hour) instead of retrying sooner.
    """

    def __init__(
        self,
        tokens: TokenManager,
        source: WeatherSource,
        settings: RefreshSettings,
        clock: Clock,
        log: EventLog,
    ) -> None:
        self._tokens = tokens
        self._source = source
        self._settings = settings
        self._clock = clock
        self._log = log
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._rate_limit_streak = 0
        self._skipped_scopes: set[str] = set()
        self._fresh_authorization = False
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
            self._wake.wait(self._time_to_next(next_fetch, renew_not_before))

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
        """One refresh; returns how long to wait before the next."""
        with self._lock:
            if self._fresh_authorization:
                self._fresh_authorization = False
                self._skipped_scopes.clear()
                self._rate_limit_streak = 0
            started = self._clock.now()
            try:
                stations = self._fetch_all()
            except NetatmoError as exc:
                return self._record_failure(started, exc)
            self.snapshot = Snapshot(stations, fetched_at=started,
                                     skipped=tuple(sorted(self._skipped_scopes)))
            self._rate_limit_streak = 0
            self.status = RefreshStatus(started, self._clock.now() - started, ok=True)
            self.version += 1
            self._log.info("refresh_ok", stations=len(stations),
                           modules=sum(len(s.all_modules) for s in stations),
                           took=round(self.status.duration, 3))
            return self._settings.interval

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
        self.status = RefreshStatus(started, self._clock.now() - started, ok=False,
                                    error_reason=exc.reason, error_message=str(exc),
                                    backoff_until=backoff_until)
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
        self._tokens.mark_missing_scope()
        self._log.warning("endpoint_skipped", scope=scope, reason=reason)

    def _fetch_all(self) -> tuple[Station, ...]:
        wanted = self._wanted_scopes()
        if not wanted and not self._energy_only():
            self._tokens.mark_missing_scope()
            raise MissingScope("any data endpoint")
        stations: list[Station] = []
        for scope in wanted:
            try:
                stations.extend(self._fetch_with_fresh_token(scope))
            except MissingScope as exc:
                self._skip(scope, str(exc))
        return _unique(stations)

    def _energy_only(self) -> bool:
        """Only Energy asked for: no weather endpoint is wanted, and that is no fault."""
        return not {STATIONS_SCOPE, HOMECOACH_SCOPE} & set(self._settings.scopes)

    def _fetch_with_fresh_token(self, scope: str) -> tuple[Station, ...]:
        """A rejected access token is refreshed and the call tried once more."""
        access_token = self._tokens.access_token()
        try:
            return self._fetch(scope, access_token)
        except AccessTokenRejected:
            self._tokens.reject_access_token(access_token)
        return self._fetch(scope, self._tokens.access_token())

    def _fetch(self, scope: str, access_token: str) -> tuple[Station, ...]:
        if scope == STATIONS_SCOPE:
            return self._source.fetch_stations(access_token, self._settings.favorites)
        return self._source.fetch_homecoaches(access_token)


def _unique(stations: list[Station]) -> tuple[Station, ...]:
    seen: dict[str, Station] = {}
    for station in stations:
        if station.id not in seen or seen[station.id].favorite:
            seen[station.id] = station
    return tuple(seen.values())
