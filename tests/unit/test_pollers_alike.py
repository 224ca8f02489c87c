"""The weather refresher and the Energy poller behave alike where they should: a new
authorization ends a rate-limit backoff, not being authorized is no error, a failure of the
token fails the whole refresh (never one home), and no "ok" line follows a failure. Each
case runs against both pollers on the fake clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import pytest

from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.call_policy import PollLoop
from netatmo_exporter.domain.energy.poller import EnergyPoller
from netatmo_exporter.domain.errors import NetatmoError, RateLimited, TransientError
from netatmo_exporter.domain.weather.refresher import Refresher, RefreshSettings
from netatmo_exporter.simulator.energy import MAISON
from tests.support.harness import wait_until
from tests.unit.fakes import (
    FakeClock,
    FakeLog,
    FakeTokenEndpoint,
    FakeTokenStore,
    FakeWeatherSource,
    station,
)
from tests.unit.test_energy import ALL_SCOPES, FakeEnergySource

INTERVAL = 60.0


class Poller(Protocol):
    clock: FakeClock
    log: FakeLog
    endpoint: FakeTokenEndpoint
    loop: PollLoop
    ok_line: str
    failed_line: str

    def poll(self) -> float: ...

    def fail_data_calls(self, errors: list[NetatmoError]) -> None: ...

    def refresh_errors(self) -> dict[str, int]: ...

    def other_errors(self) -> dict[str, int]: ...


def _tokens(clock: FakeClock, log: FakeLog, token: Token | None
            ) -> tuple[TokenManager, FakeTokenEndpoint]:
    endpoint = FakeTokenEndpoint(clock)
    if token is None:
        token = Token.from_grant("access-0", "refresh-0", 10800.0, clock.now(), ALL_SCOPES)
    tokens = TokenManager(endpoint, FakeTokenStore(token), clock, log)
    tokens.load()
    return tokens, endpoint


class Weather:
    ok_line, failed_line = "refresh_ok", "refresh_failed"

    def __init__(self, token: Token | None = None) -> None:
        self.clock = FakeClock()
        self.log = FakeLog()
        tokens, self.endpoint = _tokens(self.clock, self.log, token)
        self.source = FakeWeatherSource((station(now=self.clock.now()),))
        self.poller = Refresher(tokens, self.source,
                                RefreshSettings(INTERVAL, ("read_station",), False, "fixed"),
                                self.clock, self.log, self.clock.wait)
        self.loop = self.poller.loop

    def poll(self) -> float:
        return self.poller.poll_once()

    def fail_data_calls(self, errors: list[NetatmoError]) -> None:
        self.source.errors["stations"] = errors

    def refresh_errors(self) -> dict[str, int]:
        return dict(self.poller.state().error_counts)

    def other_errors(self) -> dict[str, int]:
        return {}


class Energy:
    ok_line, failed_line = "energy_refresh_ok", "energy_refresh_failed"

    def __init__(self, token: Token | None = None) -> None:
        self.clock = FakeClock()
        self.log = FakeLog()
        tokens, self.endpoint = _tokens(self.clock, self.log, token)
        self.source = FakeEnergySource()
        self.poller = EnergyPoller(tokens, self.source, INTERVAL, self.clock, self.log,
                                   wait=self.clock.wait)
        self.loop = self.poller.loop

    def poll(self) -> float:
        return self.poller.poll_once()

    def fail_data_calls(self, errors: list[NetatmoError]) -> None:
        self.source.errors["homesdata"] = errors

    def refresh_errors(self) -> dict[str, int]:
        return {reason: n for (home, reason), n in self.poller.state().error_counts.items()
                if home == ""}

    def other_errors(self) -> dict[str, int]:
        """Per home."""
        return {f"{home} {reason}": n
                for (home, reason), n in self.poller.state().error_counts.items() if home}


POLLERS: dict[str, Callable[..., Poller]] = {"weather": Weather, "energy": Energy}


@pytest.fixture(params=sorted(POLLERS))
def make(request: pytest.FixtureRequest) -> Callable[..., Poller]:
    return POLLERS[request.param]


def test_a_new_authorization_ends_a_rate_limit_backoff(make: Callable[..., Poller]) -> None:
    poller = make()
    poller.fail_data_calls([RateLimited("code 26")] * 3)

    backing_off = [poller.poll(), poller.poll()]
    poller.loop.wake()  # a new token: the user authorized again
    after_authorization = poller.poll()

    assert backing_off == [2 * INTERVAL, 4 * INTERVAL]
    assert after_authorization == 2 * INTERVAL


def test_not_being_authorized_yet_is_no_error(make: Callable[..., Poller]) -> None:
    poller = make(Token())  # an empty token file

    poller.poll()

    assert poller.refresh_errors() == {} and poller.other_errors() == {}
    assert poller.ok_line not in poller.log.names()


def test_a_token_failure_fails_the_refresh_once_never_a_home(
        make: Callable[..., Poller]) -> None:
    # A 20-minute token: due for renewal (2 min before expiry) while the homes' setup,
    # read at the first poll, is still current.
    poller = make(Token.from_grant("access-0", "refresh-0", 1200.0, FakeClock().now(),
                                  ALL_SCOPES))
    poller.poll()
    poller.clock.advance(1100.0)
    poller.endpoint.failures = [TransientError("Netatmo token: HTTP 503", "server_error")]
    lines = len(poller.log.names())
    homes_before = poller.other_errors()  # the demo account's Chalet lists only errors

    wait = poller.poll()

    assert wait == INTERVAL
    assert poller.refresh_errors() == {"server_error": 1}
    assert poller.other_errors() == homes_before
    said = poller.log.names()[lines:]
    assert said.count(poller.failed_line) == 1 and poller.ok_line not in said
    poller.clock.advance(wait)
    poller.poll()
    assert poller.log.names()[-1] == poller.ok_line


def test_a_home_failing_on_its_own_is_that_homes_error_only() -> None:
    poller = Energy()
    poller.source.errors[MAISON] = [TransientError("Netatmo homestatus: HTTP 502",
                                                   "server_error")] * 3  # every try

    poller.poll()

    assert poller.other_errors()[f"{MAISON} server_error"] == 1
    assert poller.refresh_errors() == {}
    assert "home_status_failed" in poller.log.names("warning")


def test_a_poll_that_crashes_is_a_failed_refresh_and_the_loop_lives_on(
    make: Callable[..., Poller]
) -> None:
    """A bug of our own (here a RecursionError out of the source) once ended the thread for
    good, leaving the last data on /metrics as if it were fresh."""
    poller = make()
    poller.fail_data_calls([RecursionError("maximum recursion depth exceeded")])  # type: ignore[list-item]
    runner = threading.Thread(target=poller.poller.run)  # type: ignore[attr-defined]
    runner.start()
    try:
        wait_until("a refresh after the crash", lambda: poller.ok_line in poller.log.names(),
                   10.0, every=0.01)
    finally:
        poller.loop.stop()
        runner.join(10.0)

    failed = poller.log.names("error")
    assert failed[0] == poller.failed_line
    assert poller.refresh_errors().get("internal_error") == 1
    assert not runner.is_alive()
