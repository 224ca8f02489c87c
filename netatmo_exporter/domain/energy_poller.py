"""The background loop that reads Netatmo Energy: the homes' setup about hourly, each home's
status every refresh interval. It runs beside the weather refresher and shares its token."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from netatmo_exporter.domain.authorization import TokenManager
from netatmo_exporter.domain.energy import (
    THERMOSTAT_SCOPE,
    EnergySnapshot,
    HomeReport,
    HomeSetup,
)
from netatmo_exporter.domain.errors import (
    AccessTokenRejected,
    MissingScope,
    NetatmoError,
    RateLimited,
)
from netatmo_exporter.domain.ports import Clock, EnergySource, EventLog

SETUP_INTERVAL = 3600.0
MAX_BACKOFF = 3600.0

T = TypeVar("T")


class EnergyPoller:
    """Fetches `homesdata` at start, after each authorization and then every
    `setup_interval`, and `homestatus` for every home each `interval`.

    One home's failure is recorded for that home only; the others and the weather data are
    unaffected. A scope the token lacks is reported once and not asked for again until the
    user authorizes anew.
    """

    def __init__(self, tokens: TokenManager, source: EnergySource, interval: float,
                 clock: Clock, log: EventLog, *, setup_interval: float = SETUP_INTERVAL
                 ) -> None:
        self._tokens = tokens
        self._source = source
        self._interval = interval
        self._setup_interval = setup_interval
        self._clock = clock
        self._log = log
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._fresh_authorization = False
        self._scope_missing = False
        self._rate_limit_streak = 0
        self._homes: tuple[HomeSetup, ...] | None = None
        self._homes_at = 0.0
        self.snapshot: EnergySnapshot | None = None
        self.error_counts: Counter[tuple[str, str]] = Counter()
        self.version = 0

    def wake(self) -> None:
        """A new token arrived: read the homes again now."""
        self._fresh_authorization = True
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self.poll_once() if self._tokens.authorized else self._interval
            self._wake.wait(wait)

    def poll_once(self) -> float:
        """One refresh of every home; returns how long to wait before the next."""
        with self._lock:
            if self._fresh_authorization:
                self._fresh_authorization = False
                self._scope_missing = False
                self._homes = None
            if self._scope_missing:
                return self._interval
            granted = self._tokens.granted_scope()
            if granted is not None and THERMOSTAT_SCOPE not in granted:
                return self._skip("the authorization does not include read_thermostat")
            started = self._clock.now()
            try:
                homes = self._current_homes(started)
            except MissingScope as exc:
                return self._skip(str(exc))
            except NetatmoError as exc:
                return self._publish_failure(started, exc)
            try:
                reports = tuple(self._report(home) for home in homes)
            except MissingScope as exc:
                return self._skip(str(exc))
            except RateLimited as exc:
                return self._publish_failure(started, exc)
            self._rate_limit_streak = 0
            self._publish(EnergySnapshot(reports, fetched_at=started))
            failed = [r.setup.id for r in reports if r.status is None]
            self._log.info("energy_refresh_ok", homes=len(reports), failed_homes=len(failed),
                           took=round(self._clock.now() - started, 3))
            return self._interval

    def _current_homes(self, now: float) -> tuple[HomeSetup, ...]:
        """The homes' setup, read again when due. A failed re-read keeps the known setup
        (it rarely changes) and is tried again at the next refresh."""
        if self._homes is not None and now - self._homes_at < self._setup_interval:
            return self._homes
        try:
            self._homes = self._with_fresh_token(self._source.fetch_homes)
        except (MissingScope, RateLimited):
            raise
        except NetatmoError as exc:
            if self._homes is None:
                raise
            self._count("", exc.reason)
            self._log.warning("homesdata_failed", reason=exc.reason, error=str(exc),
                              keeping_homes=len(self._homes))
            return self._homes
        self._homes_at = now
        return self._homes

    def _report(self, home: HomeSetup) -> HomeReport:
        try:
            status = self._with_fresh_token(
                lambda token: self._source.fetch_home_status(token, home.id))
        except (MissingScope, RateLimited):
            raise
        except NetatmoError as exc:
            self._count(home.id, exc.reason)
            self._log.warning("home_status_failed", home_id=home.id, reason=exc.reason,
                              error=str(exc))
            return HomeReport(home, None, exc.reason, str(exc))
        return HomeReport(home, status)

    def _with_fresh_token(self, call: Callable[[str], T]) -> T:
        """A rejected access token is refreshed and the call tried once more."""
        access_token = self._tokens.access_token()
        try:
            return call(access_token)
        except AccessTokenRejected:
            self._tokens.reject_access_token(access_token)
        return call(self._tokens.access_token())

    def _skip(self, reason: str) -> float:
        self._scope_missing = True
        self._homes = None
        self._tokens.mark_missing_scope()
        self._log.warning("endpoint_skipped", scope=THERMOSTAT_SCOPE, reason=reason)
        self._publish(EnergySnapshot((), fetched_at=self._clock.now(), scope_missing=True))
        return self._interval

    def _publish_failure(self, started: float, exc: NetatmoError) -> float:
        wait = self._interval
        if isinstance(exc, RateLimited):
            self._rate_limit_streak += 1
            wait = min(MAX_BACKOFF, max(wait * 2 ** self._rate_limit_streak,
                                        exc.retry_after or 0.0))
        self._count("", exc.reason)
        previous = self.snapshot.homes if self.snapshot is not None else ()
        self._publish(EnergySnapshot(previous, fetched_at=started, error_reason=exc.reason,
                                     error_message=str(exc)))
        self._log.error("energy_refresh_failed", reason=exc.reason, error=str(exc),
                        next_try_in=round(wait, 1))
        return wait

    def _count(self, home_id: str, reason: str) -> None:
        # Replaced whole, so a scrape never iterates a counter being changed.
        counts = Counter(self.error_counts)
        counts[(home_id, reason)] += 1
        self.error_counts = counts

    def _publish(self, snapshot: EnergySnapshot) -> None:
        self.snapshot = snapshot
        self.version += 1
