"""The call policy every Netatmo caller follows: budget, token retry, backoff, poll loop."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry

from netatmo_exporter.adapters.metrics.budget_collector import BudgetCollector
from netatmo_exporter.adapters.pages.status_view import budget_waits
from netatmo_exporter.domain.authorization.renewal import TOKEN_FILE_POLL, TokenRenewal
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.call_policy import (
    MAX_BACKOFF,
    POLLER_RETRIES,
    Backoff,
    BudgetWaits,
    BudgetWaitState,
    CallBudget,
    CallPolicy,
    PollLoop,
    Stopped,
    TransientRetries,
)
from netatmo_exporter.domain.errors import (
    AccessTokenRejected,
    MissingScope,
    RateLimited,
    TransientError,
)
from tests.unit.fakes import (
    FakeAccessTokens,
    FakeClock,
    FakeLog,
    FakeTokenEndpoint,
    FakeTokenStore,
    fresh_token,
)


class Calls:
    """A caller of Netatmo whose answers are queued: an exception is raised, else echoed."""

    def __init__(self, *answers: Exception) -> None:
        self.answers = list(answers)
        self.tokens: list[str] = []

    def __call__(self, access_token: str) -> str:
        self.tokens.append(access_token)
        if self.answers:
            raise self.answers.pop(0)
        return f"data for {access_token}"


ONE_TRY = TransientRetries()


def policy(budget: CallBudget | None = None, caller: str = "weather",
           share: int | None = None, retries: TransientRetries = ONE_TRY
           ) -> tuple[CallPolicy, FakeClock, FakeAccessTokens]:
    clock = FakeClock()
    tokens = FakeAccessTokens()
    calls = CallPolicy(tokens, budget or CallBudget(), clock, PollLoop(clock, clock.wait),
                       caller=caller, hourly_share=share, retries=retries)
    return calls, clock, tokens


# -- budget -------------------------------------------------------------------------------


def test_fifty_calls_in_ten_seconds_then_the_next_waits_for_the_oldest_to_age_out() -> None:
    budget = CallBudget()
    now = 1000.0
    for i in range(50):
        assert budget.take("weather", None, now + i * 0.1) == 0.0

    assert budget.take("weather", None, now + 5.0) == pytest.approx(5.0)
    assert budget.take("weather", None, now + 10.0) == 0.0  # the first call aged out
    assert budget.take("weather", None, now + 10.05) == pytest.approx(0.05)
    assert budget.use(now + 10.05).last_10s == 50


def test_five_hundred_calls_an_hour_whoever_makes_them() -> None:
    budget = CallBudget()
    for i in range(500):
        assert budget.take("weather" if i % 2 else "energy", None, i * 7.0) == 0.0

    assert budget.take("energy", None, 3500.0) == pytest.approx(3600.0 - 3500.0)
    assert budget.use(3500.0).by_caller == (("energy", 250), ("weather", 250))
    assert budget.take("energy", None, 3600.0 + 0.01) == 0.0


def test_a_caller_with_an_hourly_share_waits_while_the_others_go_on() -> None:
    budget = CallBudget()
    for i in range(3):
        assert budget.take("backfill", 3, 100.0 + i) == 0.0

    assert budget.take("backfill", 3, 200.0) == pytest.approx(100.0 + 3600.0 - 200.0)
    assert budget.take("weather", None, 200.0) == 0.0
    assert budget.use(200.0).by_caller == (("backfill", 3), ("weather", 1))


def test_room_says_the_wait_without_booking_and_use_counts_each_window_by_caller() -> None:
    budget = CallBudget(short_limit=2)
    budget.take("weather", None, 100.0)
    budget.take("backfill", 5, 105.0)

    assert budget.room("weather", None, 106.0) == pytest.approx(4.0)
    assert budget.room("weather", None, 106.0) == pytest.approx(4.0)
    assert budget.use(112.0).by_caller_10s == (("backfill", 1),)
    assert budget.use(112.0).by_caller == (("backfill", 1), ("weather", 1))


def test_call_waits_on_the_injected_clock_when_the_budget_is_full() -> None:
    budget = CallBudget(short_limit=2)
    calls, clock, _ = policy(budget)
    start = clock.now()

    answers = [calls.call(Calls()) for _ in range(3)]

    assert answers == ["data for access-0"] * 3
    assert clock.waits == [pytest.approx(10.0)]
    assert clock.now() == pytest.approx(start + 10.0)


def test_the_budget_is_shared_by_every_policy_of_the_process() -> None:
    budget = CallBudget(short_limit=2)
    weather, _, _ = policy(budget, "weather")
    energy, clock, _ = policy(budget, "energy")
    weather.call(Calls())
    weather.call(Calls())

    energy.call(Calls())

    assert clock.waits == [pytest.approx(10.0)]


def test_a_stopped_loop_ends_a_wait_for_the_budget() -> None:
    budget = CallBudget(short_limit=1)
    clock = FakeClock()
    loop = PollLoop(clock, clock.wait)
    calls = CallPolicy(FakeAccessTokens(), budget, clock, loop, caller="backfill")
    calls.call(Calls())
    loop.stop()

    with pytest.raises(Stopped):
        calls.call(Calls())


# -- token retry --------------------------------------------------------------------------


def test_a_rejected_token_is_rejected_and_the_call_repeated_once_with_a_fresh_one() -> None:
    calls, _, tokens = policy()
    fetch = Calls(AccessTokenRejected("code 3"))

    assert calls.call(fetch) == "data for access-1"

    assert fetch.tokens == ["access-0", "access-1"]
    assert tokens.rejected == ["access-0"]


def test_a_second_rejection_is_raised_and_both_calls_count() -> None:
    budget = CallBudget()
    calls, clock, tokens = policy(budget)
    fetch = Calls(AccessTokenRejected("code 2"), AccessTokenRejected("code 2"))

    with pytest.raises(AccessTokenRejected):
        calls.call(fetch)

    assert tokens.rejected == ["access-0"]
    assert budget.use(clock.now()).last_hour == 2


def test_the_token_is_taken_after_the_wait_for_the_budget_not_before() -> None:
    # An access token living 10 minutes and a share spent for the hour: the wait outlasts
    # the token, so a token taken before the wait would be refused by Netatmo.
    clock = FakeClock()
    endpoint = FakeTokenEndpoint(clock, lifetime=600.0)
    manager = TokenManager(endpoint, FakeTokenStore(fresh_token(clock, lifetime=600.0)),
                           clock, FakeLog())
    manager.load()
    calls = CallPolicy(manager, CallBudget(), clock, PollLoop(clock, clock.wait),
                       caller="backfill", hourly_share=1)
    calls.call(Calls())
    fetch = Calls()

    calls.call(fetch)

    assert clock.waits == [pytest.approx(3600.0)]
    assert fetch.tokens == ["access-1-refresh-0"]  # renewed after the wait, used once
    assert endpoint.refreshes == ["refresh-0"]


def test_other_errors_pass_through_untouched() -> None:
    calls, _, tokens = policy()

    with pytest.raises(TransientError):
        calls.call(Calls(TransientError("HTTP 502", "server_error")))

    assert tokens.rejected == []


# -- rate limiting ------------------------------------------------------------------------


def test_backoff_doubles_up_to_an_hour_honours_retry_after_and_resets() -> None:
    backoff = Backoff()
    refusal = RateLimited("code 26")

    waits = [backoff.after(refusal, 60.0) for _ in range(7)]
    backoff.reset()

    assert waits == [120.0, 240.0, 480.0, 960.0, 1920.0, MAX_BACKOFF, MAX_BACKOFF]
    assert backoff.after(RateLimited("429", retry_after=900.0), 60.0) == 900.0


def test_call_patiently_waits_out_code_26_and_goes_through() -> None:
    calls, clock, _ = policy()
    fetch = Calls(RateLimited("code 26"), RateLimited("code 26"))

    assert calls.call_patiently(fetch, 60.0) == "data for access-0"

    assert clock.waits == [120.0, 240.0]


def test_transient_failures_are_retried_a_bounded_number_of_times_each_try_booked() -> None:
    budget = CallBudget()
    calls, clock, _ = policy(budget, retries=TransientRetries(tries=3))

    assert calls.call_patiently(Calls(TransientError("5xx")), 60.0) == "data for access-0"
    with pytest.raises(TransientError):
        calls.call(Calls(*[TransientError("5xx")] * 5))
    with pytest.raises(MissingScope):
        calls.call(Calls(MissingScope("getmeasure")))

    assert clock.waits == [5.0, 5.0, 10.0]
    assert budget.use(clock.now()).last_hour == 2 + 3 + 1


def test_the_pollers_retry_a_passing_failure_after_one_then_two_seconds() -> None:
    calls, clock, _ = policy(retries=POLLER_RETRIES)
    fetch = Calls(TransientError("timeout"), TransientError("HTTP 502"))

    assert calls.call(fetch) == "data for access-0"

    assert clock.waits == [1.0, 2.0]
    assert len(fetch.tokens) == 3


def test_a_rate_limit_refusal_is_not_retried_by_call() -> None:
    calls, clock, _ = policy(retries=POLLER_RETRIES)
    fetch = Calls(RateLimited("code 26"))

    with pytest.raises(RateLimited):
        calls.call(fetch)

    assert clock.waits == [] and len(fetch.tokens) == 1


def test_a_stop_ends_the_wait_before_a_retry() -> None:
    clock = FakeClock()
    loop = PollLoop(clock, clock.wait)
    fetch = Calls(TransientError("timeout"))

    def failing_then_stopped(access_token: str) -> str:
        loop.stop()  # SIGTERM arrives while the call is out
        return fetch(access_token)

    calls = CallPolicy(FakeAccessTokens(), CallBudget(), clock, loop, caller="weather",
                       retries=POLLER_RETRIES)

    with pytest.raises(Stopped):
        calls.call(failing_then_stopped)

    assert clock.waits == [] and len(fetch.tokens) == 1


# -- saying that a poller waits for the budget --------------------------------------------


def test_a_wait_for_the_budget_is_logged_once_shown_while_it_lasts_and_counted() -> None:
    budget = CallBudget(long_limit=3)
    clock = FakeClock()
    log = FakeLog()
    waits = BudgetWaits(log)
    seen: list[BudgetWaitState] = []

    def wait(event: threading.Event, timeout: float) -> bool:
        seen.append(waits.state(clock.now()))
        return clock.wait(event, min(timeout, 600.0))  # six looks at the budget

    calls = CallPolicy(FakeAccessTokens(), budget, clock, PollLoop(clock, wait),
                       caller="weather", waits=waits)
    for _ in range(3):
        budget.take("backfill", 400, clock.now())
    start = clock.now()

    assert calls.call(Calls()) == "data for access-0"

    assert log.names() == ["budget_wait"]
    _, _, said = log.events[0]
    assert said["caller"] == "weather" and said["wait"] == 3600.0
    assert said["why"] == "room in the hour (3 calls per hour)"
    assert len(seen) == 6
    assert [w.caller for w in seen[-1].waiting] == ["weather"]
    assert seen[-1].waiting[0].since == start
    after = waits.state(clock.now())
    assert after.waiting == ()
    assert after.waited == (("weather", pytest.approx(3600.0)),)


def test_an_hourly_share_beyond_netatmos_hour_is_refused() -> None:
    with pytest.raises(ValueError, match="1 to 500"):
        policy(share=501)


# -- the poll loop ------------------------------------------------------------------------


def test_the_loop_polls_at_start_then_after_each_returned_wait_until_stopped() -> None:
    clock = FakeClock()
    loop = PollLoop(clock, clock.wait)
    polled: list[float] = []

    def poll() -> float:
        polled.append(clock.now())
        if len(polled) == 3:
            loop.stop()
        return 30.0

    loop.run(poll)

    start = polled[0]
    assert [at - start for at in polled] == [0.0, 30.0, 60.0]


def test_wake_polls_at_once_and_stopped_during_a_poll_ends_the_loop() -> None:
    clock = FakeClock()
    loop = PollLoop(clock, clock.wait)
    polled: list[float] = []

    def poll() -> float:
        polled.append(clock.now())
        if len(polled) == 1:
            loop.wake()
            return 3600.0
        loop.stop()
        raise Stopped()

    runner = threading.Thread(target=loop.run, args=(poll,), daemon=True)
    runner.start()
    runner.join(5)

    assert not runner.is_alive()
    assert polled == [polled[0], polled[0]]


# -- token renewal ------------------------------------------------------------------------


def renewal_world(token: Token | None = None) -> tuple[TokenRenewal, FakeClock,
                                                       FakeTokenEndpoint, FakeLog]:
    clock = FakeClock()
    endpoint = FakeTokenEndpoint(clock)
    log = FakeLog()
    tokens = TokenManager(endpoint, FakeTokenStore(fresh_token(clock) if token is None
                                                   else token), clock, log)
    tokens.load()
    return TokenRenewal(tokens, clock, log, retry_after=60.0), clock, endpoint, log


def test_a_failed_renewal_is_said_once_and_tried_again_after_the_interval() -> None:
    renewal, clock, endpoint, log = renewal_world()
    clock.advance(10800.0 - 60.0)
    endpoint.failures.append(TransientError("Netatmo token: HTTP 503"))

    assert renewal.renew_if_due() == 60.0

    assert log.names("warning") == ["token_renewal_failed"]
    assert renewal.renew_if_due() > 60.0
    assert len(endpoint.refreshes) == 2


def test_unauthorized_renewal_looks_for_a_token_file_written_by_login() -> None:
    renewal, _, endpoint, _ = renewal_world(Token())

    assert renewal.renew_if_due() == TOKEN_FILE_POLL
    assert endpoint.refreshes == []


def test_the_wait_shows_on_the_metrics_and_the_status_page() -> None:
    clock = FakeClock()
    budget = CallBudget(long_limit=1)
    waits = BudgetWaits(FakeLog())
    budget.take("backfill", 400, clock.now())
    waits.waiting("weather", clock.now(), 3000.0, "room in Netatmo's budget")
    clock.advance(600.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BudgetCollector(lambda: budget.use(clock.now()),
                                      lambda: waits.state(clock.now())))

    def sample(name: str, caller: str) -> float | None:
        return registry.get_sample_value(name, {"caller": caller})

    assert sample("netatmo_exporter_api_budget_waiting", "weather") == 1.0
    assert sample("netatmo_exporter_api_budget_waiting", "energy") == 0.0
    assert sample("netatmo_exporter_api_budget_wait_seconds_total", "weather") == 600.0
    assert budget_waits(waits.state(clock.now()), clock.now()) == [
        "The weather poller has waited 10 min for room in Netatmo's budget; next try in "
        "40 min. A backfill beside the service takes part of the budget (its --hourly-calls)."]
    waits.done("weather", clock.now())
    assert sample("netatmo_exporter_api_budget_waiting", "weather") == 0.0
    assert budget_waits(waits.state(clock.now()), clock.now()) == []
