"""The loop that keeps the access token fresh between data calls."""

from __future__ import annotations

from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.call_policy import PollLoop, event_wait
from netatmo_exporter.domain.errors import NetatmoError, PollCrashed
from netatmo_exporter.domain.ports import Clock, EventLog, Wait

MIN_RENEWAL_GAP = 1.0
TOKEN_FILE_POLL = 5.0


class TokenRenewal:
    """The one owner of token renewal. It renews the access token when it falls due, so a
    token never lapses while the pollers wait for their next turn, and, while the exporter
    is unauthorized, looks for a token another program (`login`) wrote to the token file.

    The pollers never decide to renew: they ask `TokenManager.access_token()`, which renews
    (single-flight) only if this loop has not yet. A failed renewal is logged once and
    tried again after `retry_after` (the refresh interval), not in a burst.
    """

    def __init__(self, tokens: TokenManager, clock: Clock, log: EventLog, retry_after: float,
                 wait: Wait = event_wait) -> None:
        self._tokens = tokens
        self._clock = clock
        self._log = log
        self._retry_after = retry_after
        self.loop = PollLoop(clock, wait)
        """`loop.wake()` when a new token arrives, to plan its renewal."""

    def run(self) -> None:
        self.loop.run(self.renew_if_due, crashed=self._crashed)

    def _crashed(self, exc: PollCrashed) -> float:
        self._log.error("renewal_crashed", error=str(exc), next_try_in=self._retry_after)
        return self._retry_after

    def renew_if_due(self) -> float:
        """Renews when due; returns how long until the next look."""
        with self.loop.lock:
            if not self._tokens.authorized:
                self._tokens.reload_if_replaced()
                return TOKEN_FILE_POLL
            now = self._clock.now()
            due_in = self._tokens.refresh_due_in(now)
            if due_in is None or due_in > 0:
                return TOKEN_FILE_POLL if due_in is None else due_in
            try:
                self._tokens.access_token()
            except NetatmoError as exc:
                self._log.warning("token_renewal_failed", reason=exc.reason, error=str(exc),
                                  next_try_in=round(self._retry_after, 1))
                return self._retry_after
            due_in = self._tokens.refresh_due_in(self._clock.now())
            return max(MIN_RENEWAL_GAP, due_in or 0.0)
