"""Refresher: immediate fetch, rate-limit backoff, skipped scopes, rejected access tokens."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import pytest

from netatmo_exporter.domain.authorization.renewal import TokenRenewal
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.authorization.tokens import AuthState, TokenManager
from netatmo_exporter.domain.call_policy import MAX_BACKOFF, PollLoop
from netatmo_exporter.domain.errors import (
    AccessTokenRejected,
    ApiError,
    MissingScope,
    RateLimited,
    TransientError,
)
from netatmo_exporter.domain.weather.model import Station
from netatmo_exporter.domain.weather.refresher import Refresher, RefreshSettings
from netatmo_exporter.domain.weather.schedule import RefreshMode
from tests.unit.fakes import (
    FakeClock,
    FakeLog,
    FakeTokenEndpoint,
    FakeTokenStore,
    FakeWeatherSource,
    fresh_token,
    station,
)

INTERVAL = 60.0
BOTH = ("read_station", "read_homecoach")


class World:
    def __init__(self, token: Token | None = None, scopes: tuple[str, ...] = BOTH) -> None:
        self.clock = FakeClock()
        self.endpoint = FakeTokenEndpoint(self.clock)
        self.store = FakeTokenStore(fresh_token(self.clock) if token is None else token)
        self.log = FakeLog()
        self.tokens = TokenManager(self.endpoint, self.store, self.clock, self.log)
        self.tokens.load()
        self.source = FakeWeatherSource((station(now=self.clock.now()),))
        self.refresher = Refresher(self.tokens, self.source,
                                   RefreshSettings(INTERVAL, scopes, False), self.clock,
                                   self.log, self.clock.wait)

    def endpoints_called(self) -> list[str]:
        return [endpoint for endpoint, _ in self.source.calls]


class StopAfter:
    """The loops' wait on the fake clock: jumps the clock, and stops the loop once `waits`
    waits were made (or once `before` says so), so a loop runs in the test's thread."""

    def __init__(self, clock: FakeClock, waits: int,
                 before: Callable[[], None] = lambda: None) -> None:
        self.clock = clock
        self.left = waits
        self.before = before
        self.loop: PollLoop | None = None

    def __call__(self, event: threading.Event, timeout: float) -> object:
        self.before()
        woken = self.clock.wait(event, timeout)
        self.left -= 1
        if self.left <= 0 and self.loop is not None:
            self.loop.stop()
        return woken


def run_refresher(world: World, wait: StopAfter) -> None:
    world.refresher = Refresher(world.tokens, world.source,
                                RefreshSettings(INTERVAL, BOTH, False), world.clock,
                                world.log, wait)
    wait.loop = world.refresher.loop
    world.refresher.run()


def test_run_fetches_immediately_then_waits_for_the_interval() -> None:
    world = World()
    start = world.clock.now()

    run_refresher(world, StopAfter(world.clock, waits=2))

    snapshot = world.refresher.state().snapshot
    assert snapshot is not None and snapshot.fetched_at == start + INTERVAL  # the second
    assert world.refresher.state().status.ok
    assert world.clock.waits == [INTERVAL, INTERVAL]
    assert world.endpoints_called() == ["stations", "homecoaches"] * 2


def test_wake_fetches_at_once_after_a_new_token() -> None:
    world = World(token=Token())
    authorized: list[bool] = []

    def authorize_while_waiting() -> None:
        if not authorized:
            authorized.append(True)
            world.tokens.authorize_with_code("c", "http://127.0.0.1/auth/callback",
                                             "read_station")
            world.refresher.loop.wake()

    start = world.clock.now()
    run_refresher(world, StopAfter(world.clock, waits=2, before=authorize_while_waiting))

    snapshot = world.refresher.state().snapshot
    assert snapshot is not None and snapshot.fetched_at == start  # no wait for the interval
    assert world.clock.waits == [INTERVAL]


def test_success_waits_one_interval_and_swaps_a_snapshot() -> None:
    world = World()

    assert world.refresher.poll_once() == INTERVAL
    snapshot = world.refresher.state().snapshot
    assert snapshot is not None and snapshot.fetched_at == world.clock.now()
    assert [s.id for s in snapshot.stations] == ["70:ee:50:00:00:01"]


def test_rate_limit_backoff_doubles_up_to_an_hour_and_resets_on_success() -> None:
    world = World()
    world.source.errors["stations"] = [RateLimited("code 26") for _ in range(8)]

    waits = [world.refresher.poll_once() for _ in range(8)]

    assert waits[:5] == [120.0, 240.0, 480.0, 960.0, 1920.0]
    assert waits[5:] == [MAX_BACKOFF] * 3
    assert world.refresher.state().status.backoff_until is not None
    assert world.refresher.poll_once() == INTERVAL
    world.source.errors["stations"] = [RateLimited("code 26")]
    assert world.refresher.poll_once() == 120.0


def test_retry_after_longer_than_the_backoff_is_honoured() -> None:
    world = World()
    world.source.errors["stations"] = [RateLimited("429", retry_after=900.0)]

    assert world.refresher.poll_once() == 900.0


def test_missing_scope_skips_the_endpoint_and_does_not_retry_it() -> None:
    world = World()
    world.source.errors["homecoaches"] = [MissingScope("gethomecoachsdata")]

    world.refresher.poll_once()
    world.refresher.poll_once()

    assert world.endpoints_called() == ["stations", "homecoaches", "stations"]
    snapshot = world.refresher.state().snapshot
    assert snapshot is not None and snapshot.skipped == ("read_homecoach",)
    assert world.refresher.state().status.ok
    assert world.tokens.status().state is AuthState.MISSING_SCOPE


def test_scopes_not_granted_or_not_configured_are_not_asked_for() -> None:
    world = World(scopes=("read_station",))
    world.refresher.poll_once()
    assert world.endpoints_called() == ["stations"]

    clock = FakeClock()
    granted = World(token=Token.from_grant("a", "r", 10800, clock.now(), ("read_homecoach",)))
    granted.refresher.poll_once()
    assert granted.endpoints_called() == ["homecoaches"]


def test_rejected_access_token_is_refreshed_once_then_retried() -> None:
    world = World()
    world.source.errors["stations"] = [AccessTokenRejected("code 3: expired")]

    assert world.refresher.poll_once() == INTERVAL

    assert world.endpoint.refreshes == ["refresh-0"]
    tokens_used = [token for endpoint, token in world.source.calls if endpoint == "stations"]
    assert tokens_used[0] == "access-0" and tokens_used[1] == world.store.saved[-1].access_token
    assert world.refresher.state().status.ok


def test_access_token_rejected_twice_fails_the_refresh_after_one_token_refresh() -> None:
    world = World()
    world.source.errors["stations"] = [AccessTokenRejected("code 2"),
                                       AccessTokenRejected("code 2")]

    world.refresher.poll_once()

    assert len(world.endpoint.refreshes) == 1
    assert not world.refresher.state().status.ok
    assert world.refresher.state().status.error_reason == "access_token_rejected"


def test_failure_keeps_the_last_snapshot_and_counts_the_reason() -> None:
    world = World()
    world.refresher.poll_once()
    first = world.refresher.state().snapshot
    world.source.errors["stations"] = [TransientError("HTTP 502", "server_error")] * 3

    assert world.refresher.poll_once() == INTERVAL

    assert world.refresher.state().snapshot is first
    assert not world.refresher.state().status.ok
    assert world.refresher.state().error_counts["server_error"] == 1
    assert world.tokens.status().has_refresh_token


@pytest.mark.parametrize("failures", [1, 2])
def test_transient_token_endpoint_failure_keeps_token(failures: int) -> None:
    world = World(token=Token(refresh_token="r"))
    world.endpoint.failures = [TransientError("timeout", "timeout")] * failures

    for _ in range(failures):
        world.refresher.poll_once()
        assert not world.refresher.state().status.ok
    world.refresher.poll_once()

    assert world.refresher.state().status.ok
    assert world.endpoint.refreshes == ["r"] * (failures + 1)


def test_token_falling_due_between_fetches_is_renewed_without_a_data_call() -> None:
    world = World()
    world.refresher.poll_once()
    wait = StopAfter(world.clock, waits=3)
    renewal = TokenRenewal(world.tokens, world.clock, world.log, INTERVAL, wait)
    wait.loop = renewal.loop

    renewal.run()

    # Renewed twice, each time 300 s (a tenth of the lifetime, at most 300 s) before expiry.
    assert world.endpoint.refreshes == ["refresh-0", "refresh-1-refresh-0"]
    assert world.clock.waits == [10800.0 - 300.0] * 3
    assert world.endpoints_called() == ["stations", "homecoaches"]  # one fetch only
    assert world.tokens.status().valid


def test_failed_renewal_is_reported_once_and_not_retried_before_the_next_fetch() -> None:
    world = World()
    world.refresher.poll_once()
    world.clock.advance(10800.0 - 60.0)
    world.endpoint.failures.extend([TransientError("Netatmo token: HTTP 503")] * 50)
    renewal = TokenRenewal(world.tokens, world.clock, world.log, INTERVAL)

    assert renewal.renew_if_due() == INTERVAL  # the next try, no sooner
    world.refresher.poll_once()

    assert world.log.names("warning").count("token_renewal_failed") == 1
    assert "refresh_failed" in world.log.names("error")
    assert len(world.endpoint.refreshes) == 2  # the renewal's, then the fetch's own


def test_missing_scope_on_every_endpoint_fails_the_first_refresh_at_once() -> None:
    world = World()
    world.source.errors["stations"] = [MissingScope("getstationsdata")]
    world.source.errors["homecoaches"] = [MissingScope("gethomecoachsdata")]

    world.refresher.poll_once()

    assert not world.refresher.state().status.ok
    assert world.refresher.state().status.error_reason == "missing_scope"
    assert world.refresher.state().snapshot is None


UPLOAD_PERIOD = 600.0
VISIBLE_AFTER = 4.0


class UploadingSource(FakeWeatherSource):
    """Two stations uploading every UPLOAD_PERIOD on their own phase, each upload visible
    VISIBLE_AFTER seconds after its last_status_store."""

    def __init__(self, clock: FakeClock, phases: dict[str, float],
                 coaches: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.clock = clock
        self.phases = phases
        self.coaches = coaches

    def _answer(self, endpoint: str, access_token: str, device_id: str | None
                ) -> tuple[Station, ...]:
        now = self.clock.now()
        devices = tuple(
            dataclasses.replace(station(sid, now), last_status_store=self.last_upload(sid, now),
                                kind="homecoach" if sid in self.coaches else "station")
            for sid in self.phases)
        self.stations = tuple(d for d in devices if d.kind == "station")
        self.homecoaches = tuple(d for d in devices if d.kind == "homecoach")
        return super()._answer(endpoint, access_token, device_id)

    def last_upload(self, station_id: str, now: float) -> float:
        phase = self.phases[station_id]
        return phase + (now - VISIBLE_AFTER - phase) // UPLOAD_PERIOD * UPLOAD_PERIOD


def aligned_world(mode: RefreshMode) -> tuple[World, UploadingSource]:
    world = World()
    start = world.clock.now()
    source = UploadingSource(world.clock, {"a": start - 50.0, "b": start - 350.0})
    world.source = source
    world.refresher = Refresher(world.tokens, source,
                                RefreshSettings(480.0, ("read_station",), False, mode),
                                world.clock, world.log, world.clock.wait)
    return world, source


def run_for(world: World, seconds: float) -> None:
    end = world.clock.now() + seconds
    for _ in range(1000):
        if world.clock.now() >= end:
            return
        world.clock.advance(world.refresher.poll_once())
    raise AssertionError("a burst of calls: 1000 without the clock moving on")


def test_aligned_mode_calls_each_station_alone_just_after_its_upload_is_visible() -> None:
    world, source = aligned_world("aligned")
    run_for(world, 3 * UPLOAD_PERIOD)  # learning, on the fallback interval
    source.calls.clear()
    source.device_ids.clear()
    start = world.clock.now()

    run_for(world, 6 * UPLOAD_PERIOD)

    assert len(source.calls) <= 1.25 * 12  # two stations, six uploads each
    # One station per call, but all of them once an hour to notice added or removed ones.
    assert set(source.device_ids) == {"a", "b", None}
    assert source.device_ids.count(None) == 1
    snapshot = world.refresher.state().snapshot
    assert snapshot is not None and [s.id for s in snapshot.stations] == ["a", "b"]
    now = world.clock.now()
    for s in snapshot.stations:  # both up to date though each call brought one
        assert s.last_status_store is not None
        assert now - s.last_status_store < UPLOAD_PERIOD + VISIBLE_AFTER + 30
    planned = {c.device_id: c for c in world.refresher.state().cadences}
    assert {c.state for c in planned.values()} == {"aligned"}
    assert planned["a"].period == UPLOAD_PERIOD
    assert world.refresher.state().status.next_call == min(c.next_call for c in planned.values())
    assert world.clock.now() > start


def test_fixed_mode_polls_every_interval_for_all_stations() -> None:
    world, source = aligned_world("fixed")
    waits = [world.refresher.poll_once() for _ in range(3)]
    run_for(world, 4 * UPLOAD_PERIOD)

    assert waits == [480.0] * 3
    assert set(source.device_ids) == {None}
    assert world.refresher.state().cadences == ()


def test_rate_limit_backoff_wins_over_the_learned_rhythm() -> None:
    world, source = aligned_world("aligned")
    run_for(world, 4 * UPLOAD_PERIOD)
    source.errors["stations"] = [RateLimited("code 26")]

    assert world.refresher.poll_once() == 2 * 480.0


def test_a_narrowed_call_that_fails_is_followed_by_one_for_all_devices() -> None:
    world, source = aligned_world("aligned")
    run_for(world, 4 * UPLOAD_PERIOD)
    world.clock.advance(world.refresher.poll_once())
    assert source.device_ids[-1] is not None
    source.errors["stations"] = [ApiError("Netatmo getstationsdata: API error code 9")]

    world.clock.advance(world.refresher.poll_once())
    world.refresher.poll_once()

    assert source.device_ids[-2] is not None and source.device_ids[-1] is None


def test_an_endpoint_refused_for_scope_drops_its_devices_from_the_plan() -> None:
    world = World()
    start = world.clock.now()
    source = UploadingSource(world.clock, {"a": start - 50.0, "c": start - 250.0},
                             coaches=("c",))
    world.refresher = Refresher(world.tokens, source, RefreshSettings(480.0, BOTH, False),
                                world.clock, world.log, world.clock.wait)
    run_for(world, 4 * UPLOAD_PERIOD)
    assert {c.device_id for c in world.refresher.state().cadences} == {"a", "c"}
    source.errors["homecoaches"] = [MissingScope("gethomecoachsdata")] * 10
    source.calls.clear()

    run_for(world, 6 * UPLOAD_PERIOD)

    assert {c.device_id for c in world.refresher.state().cadences} == {"a"}
    assert [endpoint for endpoint, _ in source.calls].count("homecoaches") <= 1
    assert len(source.calls) <= 1 + 1.25 * 6  # station a's uploads, no burst
