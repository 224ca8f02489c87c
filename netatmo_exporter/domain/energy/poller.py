"""The background loop that reads Netatmo Energy: the homes' setup about hourly, each home's
status every refresh interval. It runs beside the weather refresher and shares its token."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType

from netatmo_exporter.domain.authorization.scopes import THERMOSTAT_SCOPE, RefusedScopes
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.call_policy import (
    Backoff,
    BudgetWaits,
    CallBudget,
    event_wait,
    poller_calls,
)
from netatmo_exporter.domain.energy.model import EnergySnapshot, HomeReport, HomeSetup
from netatmo_exporter.domain.errors import (
    InvalidClient,
    InvalidGrant,
    MissingScope,
    NetatmoError,
    NotAuthorized,
    RateLimited,
)
from netatmo_exporter.domain.ports import Clock, EnergySource, EventLog, Wait

SETUP_INTERVAL = 3600.0
TOKEN_FAILURES = (NotAuthorized, InvalidGrant, InvalidClient)
"""Failures of the token, never of one home's answer."""

ErrorCounts = Mapping[tuple[str, str], int]
"""Failed reads by (home id, or "" for the whole refresh, reason)."""


def _no_counts() -> ErrorCounts:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class EnergyState:
    """What scrapes and pages show of Netatmo Energy, published whole; `generation` grows
    with every publication."""

    snapshot: EnergySnapshot | None = None
    error_counts: ErrorCounts = field(default_factory=_no_counts)
    generation: int = 0


class EnergyPoller:
    """Fetches `homesdata` at start, after each authorization and then every
    `setup_interval`, and `homestatus` for every home each `interval`, through the
    `CallPolicy` it shares with the weather refresher's budget.

    One home's failure is recorded for that home only; the others and the weather data are
    unaffected. A failure of the token (not authorized, refused, the token endpoint down)
    fails the whole refresh, as it does the weather refresher's, and is never a home's.
    Counted alike too: not being authorized yet is no error. A scope the token lacks is
    reported once and not asked for again until the user authorizes anew; a new
    authorization also ends a rate-limit backoff.
    """

    def __init__(self, tokens: TokenManager, source: EnergySource, interval: float,
                 clock: Clock, log: EventLog, *, setup_interval: float = SETUP_INTERVAL,
                 wait: Wait = event_wait, budget: CallBudget | None = None,
                 waits: BudgetWaits | None = None) -> None:
        self._tokens = tokens
        self._source = source
        self._interval = interval
        self._setup_interval = setup_interval
        self._clock = clock
        self._log = log
        self.loop, self._calls = poller_calls(tokens, clock, wait, budget, waits, "energy")
        """`loop.wake()` when a new token arrives: read the homes again now."""
        self._backoff = Backoff()
        self._refused = RefusedScopes(tokens, log)
        self._homes: tuple[HomeSetup, ...] | None = None
        self._homes_at = 0.0
        self._pending_counts: ErrorCounts = _no_counts()
        self._state = EnergyState()

    def state(self) -> EnergyState:
        return self._state

    def run(self) -> None:
        self.loop.run(self.poll_once, ready=lambda: self._tokens.authorized,
                      idle=self._interval,
                      crashed=lambda exc: self._publish_failure(self._clock.now(), exc))

    def poll_once(self) -> float:
        """One refresh of every home; returns how long to wait before the next."""
        with self.loop.lock:
            if self.loop.take_news():
                self._refused.clear()
                self._backoff.reset()
                self._homes = None
            if THERMOSTAT_SCOPE in self._refused:
                return self._interval
            self._refused.refuse_ungranted((THERMOSTAT_SCOPE,))
            if THERMOSTAT_SCOPE in self._refused:
                return self._scope_refused()
            started = self._clock.now()
            try:
                # A token that cannot be had fails the refresh here, not each home below.
                self._tokens.access_token()
                homes = self._current_homes(started)
                reports = tuple(self._report(home) for home in homes)
            except MissingScope as exc:
                return self._scope_refused(str(exc))
            except NetatmoError as exc:
                return self._publish_failure(started, exc)
            self._backoff.reset()
            self._publish(EnergySnapshot(reports, fetched_at=started))
            failed = [r.setup.id for r in reports if r.status is None]
            # A home's own failure was said in its own line: the refresh went through.
            self._log.info("energy_refresh_ok", homes=len(reports), failed_homes=len(failed),
                           took=round(self._clock.now() - started, 3))
            return self._interval

    def _current_homes(self, now: float) -> tuple[HomeSetup, ...]:
        """The homes' setup, read again when due. A failed re-read keeps the known setup
        (it rarely changes) and is tried again at the next refresh."""
        if self._homes is not None and now - self._homes_at < self._setup_interval:
            return self._homes
        try:
            self._homes = self._calls.call(self._source.fetch_homes)
        except (MissingScope, RateLimited, *TOKEN_FAILURES):
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
            status = self._calls.call(partial(self._source.fetch_home_status,
                                              home_id=home.id))
        except (MissingScope, RateLimited, *TOKEN_FAILURES):
            raise
        except NetatmoError as exc:
            self._count(home.id, exc.reason)
            self._log.warning("home_status_failed", home_id=home.id, reason=exc.reason,
                              error=str(exc))
            return HomeReport(home, None, exc.reason, str(exc))
        return HomeReport(home, status)

    def _scope_refused(self, reason: str | None = None) -> float:
        if reason is not None:
            self._refused.refuse(THERMOSTAT_SCOPE, reason)
        self._homes = None
        self._publish(EnergySnapshot((), fetched_at=self._clock.now(), scope_missing=True))
        return self._interval

    def _publish_failure(self, started: float, exc: NetatmoError) -> float:
        wait = self._interval
        if isinstance(exc, RateLimited):
            wait = self._backoff.after(exc, wait)
        if not isinstance(exc, NotAuthorized):
            self._count("", exc.reason)
        previous = self._state.snapshot.homes if self._state.snapshot is not None else ()
        self._publish(EnergySnapshot(previous, fetched_at=started, error_reason=exc.reason,
                                     error_message=str(exc)))
        self._log.error("energy_refresh_failed", reason=exc.reason, error=str(exc),
                        next_try_in=round(wait, 1))
        return wait

    def _count(self, home_id: str, reason: str) -> None:
        # A new mapping, published with the next snapshot: never one a scrape is reading.
        counts = self._pending_counts
        self._pending_counts = MappingProxyType(
            {**counts, (home_id, reason): counts.get((home_id, reason), 0) + 1})

    def _publish(self, snapshot: EnergySnapshot) -> None:
        self._state = EnergyState(snapshot, self._pending_counts, self._state.generation + 1)
