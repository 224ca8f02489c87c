"""How the backfill calls Netatmo: within its share of the account's budget, with one retry
on a fresh access token, waiting out rate limits and transient failures."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol, TypeVar

from netatmo_exporter.domain.backfill import Stopped
from netatmo_exporter.domain.errors import AccessTokenRejected, NetatmoError, RateLimited
from netatmo_exporter.domain.ports import Clock

T = TypeVar("T")

WINDOW = 10.0
HOUR = 3600.0
USER_PER_WINDOW = 50
USER_PER_HOUR = 500
DEFAULT_HOURLY_SHARE = 250
"""Half of Netatmo's 500 calls per user and hour: the service needs far fewer."""
RATE_LIMIT_WAIT = 60.0
MAX_WAIT = HOUR
TRANSIENT_TRIES = 6


class AccessTokens(Protocol):
    """A usable access token, and a way to say the API rejected one (the owner of the
    authorization renews it). Raises `NotAuthorized`, `InvalidGrant` or a transient error."""

    def access_token(self) -> str: ...

    def reject_access_token(self, access_token: str) -> None: ...


Wait = Callable[[float], bool]
"""Sleeps up to the given seconds; True when the run was asked to stop meanwhile."""


class CallBudget:
    """A caller's share of the per-user limits, over sliding windows of 10 s and 1 h."""

    def __init__(self, hourly: int, per_window: int) -> None:
        if not 1 <= hourly <= USER_PER_HOUR:
            raise ValueError(f"the hourly share must be 1 to {USER_PER_HOUR}")
        self.hourly = hourly
        self.per_window = max(1, min(per_window, USER_PER_WINDOW))
        self._sent: deque[float] = deque()

    def delay(self, now: float) -> float:
        """Seconds to wait before the next call may go out."""
        while self._sent and self._sent[0] <= now - HOUR:
            self._sent.popleft()
        delays = [0.0]
        if len(self._sent) >= self.hourly:
            delays.append(self._sent[len(self._sent) - self.hourly] + HOUR - now)
        recent = [sent for sent in self._sent if sent > now - WINDOW]
        if len(recent) >= self.per_window:
            delays.append(recent[len(recent) - self.per_window] + WINDOW - now)
        return max(delays)

    def spend(self, now: float) -> None:
        self._sent.append(now)


class BudgetedCalls:
    """Satisfies `Calls` for the backfill."""

    def __init__(self, tokens: AccessTokens, budget: CallBudget, clock: Clock, wait: Wait,
                 on_wait: Callable[[float, str], None] = lambda seconds, why: None) -> None:
        self._tokens = tokens
        self._budget = budget
        self._clock = clock
        self._wait = wait
        self._on_wait = on_wait

    def call(self, request: Callable[[str], T]) -> T:
        rate_limited_wait = RATE_LIMIT_WAIT
        transient_wait = 5.0
        failures = 0
        while True:
            try:
                return self._with_fresh_token(request)
            except RateLimited as exc:
                # Code 26: the whole account's budget is spent; everyone waits, doubling.
                self._sleep(max(rate_limited_wait, exc.retry_after or 0.0),
                            "Netatmo's rate limit (code 26)")
                rate_limited_wait = min(MAX_WAIT, rate_limited_wait * 2)
            except NetatmoError as exc:
                failures += 1
                if not exc.transient or failures >= TRANSIENT_TRIES:
                    raise
                self._sleep(transient_wait, f"a passing failure ({exc.reason})")
                transient_wait = min(MAX_WAIT / 12, transient_wait * 2)

    def _with_fresh_token(self, request: Callable[[str], T]) -> T:
        token = self._paced_token()
        try:
            return request(token)
        except AccessTokenRejected:
            self._tokens.reject_access_token(token)
        return request(self._paced_token())

    def _paced_token(self) -> str:
        delay = self._budget.delay(self._clock.now())
        if delay > 0:
            self._sleep(delay, f"the backfill's share of the budget ({self._budget.hourly} "
                               "calls per hour)")
        token = self._tokens.access_token()
        self._budget.spend(self._clock.now())
        return token

    def _sleep(self, seconds: float, why: str) -> None:
        self._on_wait(seconds, why)
        if self._wait(seconds):
            raise Stopped()
