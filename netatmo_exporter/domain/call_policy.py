"""How every caller of Netatmo's data API calls it: the weather refresher, the Energy poller
and the history backfill follow this one policy.

One `CallBudget` per process holds Netatmo's per-user limits (50 calls per 10 s, 500 per
hour, both sliding windows) for all callers of that process; a backfill beside the running
service books its calls in the service's too (any `Budget` will do: see `history_calls`).
Each caller has a `CallPolicy` naming the caller and, if it must leave room to others, its
hourly share, and pausing through a `Pauses`: a poller's `PollLoop` (its wake and stop
events, the lock its polls hold, the injected wait), or the backfill's own, which also
shows why it waits:

    budget = CallBudget()                                  # once per process
    loop = PollLoop(clock, wait)                           # wait: threading.Event.wait or fake
    calls = CallPolicy(tokens, budget, clock, loop, caller="energy", hourly_share=None)
    homes = calls.call(source.fetch_homes)                 # fetch(access_token) -> answer
    loop.stop()                                            # from another thread: ends waits

`calls.call(fetch)`:

- waits, through `pauses`, until the budget has room for one call: in the 10-second window,
  in the hour, and in the caller's own `hourly_share` of the hour (None: no share of its
  own, only the windows). `Stopped` is raised if the caller is stopped meanwhile;
- then (after the wait, which may outlast an access token) hands `fetch` an access token
  from `tokens` (the `AccessTokens` port), whose failures are raised as they come (the
  token endpoint has its own bounded retries). On
  `AccessTokenRejected` it rejects that token and calls once more with a fresh one (that
  second call counts against the budget too); a second rejection is raised;
- retries a transient failure of `fetch` (timeout, connection error, 5xx) as its
  `TransientRetries` say: each try booked in the budget like the first, each wait a pause
  that a stop ends. This is the only retry of a data call: the HTTP client sends each
  data request once;
- raises every other `NetatmoError` unchanged. A rate-limit refusal (code 26 or 11, HTTP
  429) is `RateLimited`: the caller waits `Backoff.after(exc, interval)` (the interval
  doubled per refusal in a row, at least Netatmo's `retry_after`, at most `MAX_BACKOFF`)
  before its next call, and calls `Backoff.reset()` after a poll that went through.
  `calls.call_patiently(fetch, interval)` does exactly that itself, for a caller (the
  backfill) that would rather wait than give up.

A caller that must wait for room says so through `BudgetWaits` (the service's pollers: one
log line per wait, the status page, a metric) or its `Pauses` (the backfill's progress).

Stdlib only, no I/O of its own: time comes from the injected clock and every pause goes
through the injected wait, so unit tests run on a fake clock without sleeping.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from netatmo_exporter.domain.errors import (
    AccessTokenRejected,
    NetatmoError,
    PollCrashed,
    RateLimited,
)
from netatmo_exporter.domain.ports import AccessTokens, Clock, EventLog, Wait

T = TypeVar("T")

MAX_BACKOFF = 3600.0
SHORT_WINDOW = 10.0
SHORT_LIMIT = 50
LONG_WINDOW = 3600.0
LONG_LIMIT = 500
HISTORY = "history"
"""The history follower's name as a caller in the service's budget."""
BACKFILL = "backfill"
"""The backfill's name as a caller: in its own budget, and in the service's, where it
books its calls through the control socket."""
BACKFILL_WINDOW_SHARE = SHORT_LIMIT // 2
"""The backfill's share of each 10-second window, leaving the service its calls."""
BACKFILL_MAX_HOURLY_SHARE = 400
"""The most a backfill may take of the hour: the service always keeps 100 calls (an
aligned service with a few devices makes about 6 to 20 an hour, more while retrying)."""
FIRST_TRANSIENT_WAIT = 5.0
MAX_TRANSIENT_WAIT = MAX_BACKOFF / 12


@dataclass(frozen=True, slots=True)
class TransientRetries:
    """How many tries a call gets when transient failures come in a row, and the first wait
    between two (doubling, at most `MAX_TRANSIENT_WAIT`)."""

    tries: int = 1
    first_wait: float = FIRST_TRANSIENT_WAIT

    def wait(self, failures: int) -> float:
        return min(MAX_TRANSIENT_WAIT, self.first_wait * 2.0 ** (failures - 1))


POLLER_RETRIES = TransientRetries(tries=3, first_wait=1.0)
"""The service's pollers: a passing failure costs seconds, not a refresh interval."""


class Stopped(Exception):
    """The caller was asked to stop (the service shutting down; Ctrl-C or SIGTERM in a
    command) while a call waited."""


class Pauses(Protocol):
    def pause(self, seconds: float, why: str) -> None:
        """Sleeps `seconds` of the injected clock; raises `Stopped` if asked to stop
        meanwhile. `why` says what is waited for, in words a user can read."""
        ...


def event_wait(event: threading.Event, timeout: float) -> object:
    return event.wait(timeout)


class Booking(Protocol):
    def take(self, caller: str, hourly_share: int | None, now: float) -> float:
        """Books one call for `caller` at `now` and returns 0.0, or books nothing and
        returns the seconds until there is room."""
        ...


class Budget(Booking, Protocol):
    def waits_for(self, caller: str, hourly_share: int | None, now: float) -> str:
        """Which limit a `take` that booked nothing at `now` waits for, in words a user can
        read (the limit that frees last)."""
        ...


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """Calls made in each window, and in each window by caller."""

    last_10s: int
    last_hour: int
    by_caller: tuple[tuple[str, int], ...]
    """In the hour."""
    by_caller_10s: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class BudgetWait:
    """A caller waiting for room in the budget since `since`, until `until` at the latest."""

    caller: str
    since: float
    until: float
    why: str


@dataclass(frozen=True, slots=True)
class BudgetWaitState:
    """Who waits for the budget now, and how long each caller waited in all (seconds)."""

    waiting: tuple[BudgetWait, ...] = ()
    waited: tuple[tuple[str, float], ...] = ()


class BudgetWaits:
    """The service's callers waiting for room in the budget, so that a wait is never
    silent: one log line when a wait begins (not one per look at the budget), and the state
    the status page and the metrics show. Thread-safe."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._waiting: dict[str, BudgetWait] = {}
        self._waited: dict[str, float] = {}

    def waiting(self, caller: str, now: float, seconds: float, why: str) -> None:
        with self._lock:
            ongoing = self._waiting.get(caller)
            since = now if ongoing is None else ongoing.since
            self._waiting[caller] = BudgetWait(caller, since, now + seconds, why)
        if ongoing is None:
            self._log.warning("budget_wait", caller=caller, wait=round(seconds, 1), why=why)

    def done(self, caller: str, now: float) -> None:
        with self._lock:
            ended = self._waiting.pop(caller, None)
            if ended is not None:
                self._waited[caller] = self._waited.get(caller, 0.0) + max(0.0, now - ended.since)

    def state(self, now: float) -> BudgetWaitState:
        """The waits as they stand; a wait in progress counts in `waited` up to `now`."""
        with self._lock:
            waiting = tuple(sorted(self._waiting.values(), key=lambda w: w.caller))
            waited = dict(self._waited)
        for wait in waiting:
            waited[wait.caller] = waited.get(wait.caller, 0.0) + max(0.0, now - wait.since)
        return BudgetWaitState(waiting, tuple(sorted(waited.items())))


class CallJournal(Protocol):
    """Where a budget writes down each call it books, beyond the process (the service's
    `<token file>.calls`): a service restarted, or crashing in a loop, starts with the calls
    of the hour before (`CallBudget.book`) and stays within Netatmo's limits across its
    lives. Never raises: a journal that cannot write says so and the call goes ahead."""

    def record(self, at: float, caller: str) -> None: ...


class CallBudget:
    """Netatmo's per-user limits, shared by every caller of the process: at most
    `short_limit` calls in any `short_window` seconds and `long_limit` in any
    `long_window`. Each booked call is written to `journal`, if given. Thread-safe."""

    def __init__(self, short_limit: int = SHORT_LIMIT, long_limit: int = LONG_LIMIT, *,
                 short_window: float = SHORT_WINDOW, long_window: float = LONG_WINDOW,
                 journal: CallJournal | None = None) -> None:
        self._short = (short_limit, short_window)
        self._long = (long_limit, long_window)
        self._lock = threading.Lock()
        self._calls: deque[tuple[float, str]] = deque()
        self._journal = journal

    def take(self, caller: str, hourly_share: int | None, now: float) -> float:
        """Books one call for `caller` at `now` and returns 0.0; when a window or the
        caller's share is full, books nothing and returns how long until a slot frees."""
        with self._lock:
            wait = self._wait_locked(caller, hourly_share, now)
            if wait <= 0.0:
                self._calls.append((now, caller))
                if self._journal is not None:
                    self._journal.record(now, caller)
            return wait

    def room(self, caller: str, hourly_share: int | None, now: float) -> float:
        """What `take` would return, booking nothing."""
        with self._lock:
            return self._wait_locked(caller, hourly_share, now)

    def _wait_locked(self, caller: str, hourly_share: int | None, now: float) -> float:
        self._forget_before(now - self._long[1])
        every = [at for at, _ in self._calls]
        waits = [_until_free(every, *self._long, now), _until_free(every, *self._short, now)]
        if hourly_share is not None:
            own = [at for at, name in self._calls if name == caller]
            waits.append(_until_free(own, hourly_share, self._long[1], now))
        return max(0.0, *waits)

    def waits_for(self, caller: str, hourly_share: int | None, now: float) -> str:
        with self._lock:
            self._forget_before(now - self._long[1])
            every = [at for at, _ in self._calls]
            own = [at for at, name in self._calls if name == caller]
        (short_limit, short_window), (long_limit, long_window) = self._short, self._long
        limits = [(_until_free(every, short_limit, short_window, now),
                   f"room in the {short_window:g}-second window ({short_limit} calls per "
                   f"{short_window:g} s)"),
                  (_until_free(every, long_limit, long_window, now),
                   f"room in the hour ({long_limit} calls per hour)")]
        if hourly_share is not None:
            limits.append((_until_free(own, hourly_share, long_window, now),
                           f"the {caller}'s share of the hour ({hourly_share} calls per hour)"))
        return max(limits, key=lambda limit: limit[0])[1]

    def booked(self, caller: str, now: float) -> list[float]:
        """When `caller`'s calls of the last hour went out, oldest first."""
        with self._lock:
            self._forget_before(now - self._long[1])
            return [at for at, name in self._calls if name == caller]

    def book(self, caller: str, times: Iterable[float]) -> None:
        """Counts calls made before this budget existed (not written to the journal): a
        backfill run again after a stop has spent part of its hourly share already, a
        service restarted has made calls in the hour before."""
        with self._lock:
            self._calls = deque(sorted([*self._calls, *((at, caller) for at in times)]))

    def use(self, now: float) -> BudgetUse:
        with self._lock:
            self._forget_before(now - self._long[1])
            calls = list(self._calls)
        recent = [(at, caller) for at, caller in calls if at > now - self._short[1]]
        return BudgetUse(len(recent), len(calls), _count_by_caller(calls),
                         _count_by_caller(recent))

    def _forget_before(self, oldest: float) -> None:
        while self._calls and self._calls[0][0] <= oldest:
            self._calls.popleft()


def _count_by_caller(calls: list[tuple[float, str]]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = {}
    for _, caller in calls:
        counts[caller] = counts.get(caller, 0) + 1
    return tuple(sorted(counts.items()))


def _until_free(calls: list[float], limit: int, window: float, now: float) -> float:
    """Seconds until fewer than `limit` of `calls` (oldest first) lie in the window."""
    inside = [at for at in calls if at > now - window]
    if len(inside) < limit:
        return 0.0
    if limit <= 0:
        return window
    return inside[len(inside) - limit] + window - now


class Backoff:
    """Waits after rate-limit refusals in a row: the caller's interval doubled per refusal,
    never shorter than Netatmo's `retry_after`, never longer than `MAX_BACKOFF`."""

    def __init__(self) -> None:
        self._streak = 0

    def after(self, refusal: RateLimited, interval: float) -> float:
        self._streak += 1
        doubled: float = interval * 2 ** self._streak
        return min(MAX_BACKOFF, max(doubled, refusal.retry_after or 0.0))

    def reset(self) -> None:
        self._streak = 0


class PollLoop:
    """One poller's thread discipline: `run(poll)` polls at start, then when the wait
    `poll` returned has passed or when `wake()` is called, until `stop()`. A poll holds
    `lock` (it may also be called from elsewhere, as tests and the in-process harness
    do); every wait goes through the injected `wait` on the injected clock."""

    def __init__(self, clock: Clock, wait: Wait = event_wait) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self._wait = wait
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._news = False

    def wake(self) -> None:
        """News for the poller (a new token): poll now; the poll learns it by `take_news`."""
        self._news = True
        self._wake.set()

    def take_news(self) -> bool:
        """Whether `wake()` was called since the last time this was asked."""
        news, self._news = self._news, False
        return news

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self, poll: Callable[[], float], *, ready: Callable[[], bool] = lambda: True,
            idle: float = 0.0, crashed: Callable[[PollCrashed], float] | None = None) -> None:
        """Polls until stopped; while not `ready()` (unauthorized), waits `idle` or a wake.
        An unexpected exception of `poll` (a bug) goes to `crashed`, which reports it and
        returns how long to wait before polling again: the loop lives on."""
        next_poll = self.clock.now()
        while not self._stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            if woken or self.clock.now() >= next_poll:
                try:
                    next_poll = self.clock.now() + (poll() if ready() else idle)
                except Stopped:
                    return
                except Exception as exc:
                    if crashed is None or self._stop.is_set():
                        raise
                    next_poll = self.clock.now() + crashed(PollCrashed(exc))
            self._wait(self._wake, max(0.0, next_poll - self.clock.now()))

    def pause(self, seconds: float, why: str = "") -> None:
        """Sleeps `seconds` of the loop's clock unless stopped first; raises `Stopped` then.
        `wake()` does not cut it short: a pause is owed to Netatmo, not to the poller."""
        until = self.clock.now() + seconds
        while not self._stop.is_set() and self.clock.now() < until:
            self._wait(self._stop, until - self.clock.now())
        if self._stop.is_set():
            raise Stopped()


class CallPolicy:
    """One caller's way to Netatmo (see the module docstring)."""

    def __init__(self, tokens: AccessTokens, budget: Budget, clock: Clock,
                 pauses: Pauses, *, caller: str, hourly_share: int | None = None,
                 retries: TransientRetries = TransientRetries(),
                 waits: BudgetWaits | None = None) -> None:
        if hourly_share is not None and not 1 <= hourly_share <= LONG_LIMIT:
            raise ValueError(f"the hourly share must be 1 to {LONG_LIMIT}")
        self._tokens = tokens
        self._budget = budget
        self._clock = clock
        self._pauses = pauses
        self._retries = retries
        self._waits = waits
        self.caller = caller
        self.hourly_share = hourly_share

    def call(self, fetch: Callable[[str], T]) -> T:
        """`fetch(access_token)` within the budget; once more with a fresh token after a
        rejected one; again after transient failures as the policy's `TransientRetries`
        say. Raises the last failure, and the token's own failures at once (the token
        endpoint retries those itself)."""
        failures = 0
        rejected = False
        while True:
            # The token is taken after the wait for room, never before: the wait may
            # outlast the access token (a backfill can wait most of an hour), which would
            # cost a rejected call and a renewal.
            self._reserve()
            access_token = self._tokens.access_token()
            try:
                return fetch(access_token)
            except AccessTokenRejected:
                if rejected:
                    raise
                rejected = True
                self._tokens.reject_access_token(access_token)
            except RateLimited:
                raise
            except NetatmoError as exc:
                failures += 1
                if not exc.transient or failures >= self._retries.tries:
                    raise
                self._pauses.pause(self._retries.wait(failures),
                                   f"a passing failure ({exc.reason})")

    def call_patiently(self, fetch: Callable[[str], T], interval: float) -> T:
        """`call`, pausing after each rate-limit refusal as `Backoff` says, until it goes
        through (or raises what may not be retried, or `Stopped`)."""
        backoff = Backoff()
        while True:
            try:
                return self.call(fetch)
            except RateLimited as refusal:
                self._pauses.pause(backoff.after(refusal, interval),
                                   "Netatmo's rate limit (code 26)")

    def _reserve(self) -> None:
        try:
            while (wait := self._budget.take(self.caller, self.hourly_share,
                                             now := self._clock.now())) > 0:
                why = self._budget.waits_for(self.caller, self.hourly_share, now)
                if self._waits is not None:
                    self._waits.waiting(self.caller, now, wait, why)
                self._pauses.pause(wait, why)
        finally:
            if self._waits is not None:
                self._waits.done(self.caller, self._clock.now())


def poller_calls(tokens: AccessTokens, clock: Clock, wait: Wait, budget: CallBudget | None,
                 waits: BudgetWaits | None, caller: str) -> tuple[PollLoop, CallPolicy]:
    """A service poller's loop and its way to Netatmo: the process's budget (or one of its
    own), the pollers' transient retries, budget waits reported through `waits`."""
    loop = PollLoop(clock, wait)
    return loop, CallPolicy(tokens, budget or CallBudget(), clock, loop, caller=caller,
                            retries=POLLER_RETRIES, waits=waits)
