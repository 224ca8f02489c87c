"""How the backfill calls Netatmo: the one call policy (`call_policy`), with the backfill's
own share of the hour and of the 10-second window, waiting out rate limits and passing
failures, and saying why it waits.

The backfill is a process of its own. Beside a running service it books each call in the
service's budget too (through the control socket), so that the budget the service keeps for
the account counts the backfill's calls and the service's own callers leave them room; its
own budget stays the cap of its share, and remembers the calls of a stopped run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from netatmo_exporter.domain.call_policy import (
    BACKFILL,
    BACKFILL_WINDOW_SHARE,
    LONG_LIMIT,
    Booking,
    Budget,
    CallBudget,
    CallPolicy,
    Stopped,
    TransientRetries,
)
from netatmo_exporter.domain.ports import AccessTokens, Clock

T = TypeVar("T")

USER_PER_HOUR = LONG_LIMIT
DEFAULT_HOURLY_SHARE = 250
"""Half of Netatmo's 500 calls per user and hour: the service needs far fewer."""
RATE_LIMIT_INTERVAL = 30.0
"""The first wait after a rate-limit refusal is twice this, doubling after each other."""
TRANSIENT_RETRIES = TransientRetries(tries=6)
"""A passing failure is tried again after 5, 10, 20, 40 and 80 s, each try booked."""

StoppableSleep = Callable[[float], bool]
"""Sleeps up to the given seconds; True when the run was asked to stop meanwhile."""


class _ReportedPauses:
    """`Pauses` for the backfill: tells the progress line why, then waits on its stop."""

    def __init__(self, wait: StoppableSleep, on_wait: Callable[[float, str], None]) -> None:
        self._wait = wait
        self._on_wait = on_wait

    def pause(self, seconds: float, why: str) -> None:
        self._on_wait(seconds, why)
        if self._wait(seconds):
            raise Stopped()


class _BothBudgets:
    """Room in the backfill's own budget first (booking nothing), then a booking in the
    service's, then in its own: a call is counted in both or in neither."""

    def __init__(self, own: CallBudget, service: Booking) -> None:
        self._own = own
        self._service = service

    def take(self, caller: str, hourly_share: int | None, now: float) -> float:
        wait = self._own.room(caller, hourly_share, now)
        if wait > 0.0:
            return wait
        wait = self._service.take(caller, hourly_share, now)
        if wait > 0.0:
            return wait
        return self._own.take(caller, hourly_share, now)

    def waits_for(self, caller: str, hourly_share: int | None, now: float) -> str:
        if self._own.room(caller, hourly_share, now) > 0.0:
            return self._own.waits_for(caller, hourly_share, now)
        return "room in the running exporter's budget for the account"


class BudgetedCalls:
    """Satisfies `Calls` for the backfill: `CallPolicy.call_patiently` within its share;
    `service`: the running service's budget, when one runs."""

    def __init__(self, tokens: AccessTokens, hourly_share: int, clock: Clock, wait: StoppableSleep,
                 on_wait: Callable[[float, str], None] = lambda seconds, why: None,
                 service: Booking | None = None) -> None:
        # The backfill runs in a process of its own: this budget is its own too, so it
        # takes at most half of the 10-second window, leaving the service its calls.
        self._budget = CallBudget(short_limit=BACKFILL_WINDOW_SHARE)
        self._clock = clock
        budget: Budget = self._budget if service is None else _BothBudgets(self._budget,
                                                                             service)
        self._policy = CallPolicy(tokens, budget, clock, _ReportedPauses(wait, on_wait),
                                  caller=BACKFILL, hourly_share=hourly_share,
                                  retries=TRANSIENT_RETRIES)

    def call(self, request: Callable[[str], T]) -> T:
        return self._policy.call_patiently(request, RATE_LIMIT_INTERVAL)

    def recent(self) -> list[float]:
        """When the calls of the last hour went out, for the checkpoint."""
        return self._budget.booked(BACKFILL, self._clock.now())

    def carry_over(self, times: Sequence[float]) -> None:
        """Calls an earlier run of this backfill made within the hour count against its
        share, so that stopping and running it again does not take the service's calls."""
        self._budget.book(BACKFILL, times)
