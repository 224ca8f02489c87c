"""One read model: a scrape renders one published state, never a mix of two fetches, and
one token snapshot taken with it, never the facts of two tokens."""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from netatmo_exporter.adapters.metrics.api_collector import ApiCounterCollector
from netatmo_exporter.adapters.metrics.energy_collector import EnergyCollector
from netatmo_exporter.adapters.metrics.scrape_collector import ScrapeCollector
from netatmo_exporter.adapters.metrics.weather_collector import WeatherCollector
from netatmo_exporter.domain.authorization.scopes import THERMOSTAT_SCOPE
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.energy.poller import EnergyState
from netatmo_exporter.domain.errors import TransientError
from netatmo_exporter.domain.read_model import service_reader
from netatmo_exporter.domain.weather.model import Readings, Station
from netatmo_exporter.domain.weather.refresher import Refresher, RefreshSettings, WeatherState
from tests.unit.fakes import (
    FakeClock,
    FakeLog,
    FakeTokenEndpoint,
    FakeTokenStore,
    FakeWeatherSource,
    fresh_token,
    station,
)

REFRESHES = 3000
NOW = FakeClock().now()


class LockedClock(FakeClock):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.current += seconds


class StampingSource(FakeWeatherSource):
    """Each answer is measured at the moment of the call; every third refresh fails (three
    calls in a row: the poller's tries)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.count = 0

    def _answer(self, endpoint: str, access_token: str, device_id: str | None
                ) -> tuple[Station, ...]:
        self.count += 1
        now = self.clock.now()
        if self.count % 9 >= 6:
            raise TransientError("HTTP 502", "server_error")
        base = station(now=now)
        main = dataclasses.replace(base.main, readings=Readings(time_utc=now, temperature=20.0))
        return (dataclasses.replace(base, main=main),)


def authorized(clock: FakeClock, log: FakeLog) -> TokenManager:
    tokens = TokenManager(FakeTokenEndpoint(clock), FakeTokenStore(fresh_token(clock)), clock,
                          log)
    tokens.load()
    return tokens


def test_a_scrape_never_pairs_a_snapshot_with_another_refreshs_status() -> None:
    clock = LockedClock()
    log = FakeLog()
    tokens = authorized(clock, log)
    refresher = Refresher(tokens, StampingSource(clock),
                          RefreshSettings(60.0, ("read_station",), False, "fixed"), clock, log,
                          clock.wait)
    registry = CollectorRegistry(auto_describe=False)
    read = service_reader(refresher.state, tokens.status)
    registry.register(ScrapeCollector(read, WeatherCollector(read, clock, 1e9),
                                      ApiCounterCollector(read, dict)))

    def refresh() -> None:
        refresher.poll_once()
        clock.advance(10.0)  # within Netatmo's 500 calls an hour

    scrapes, mixed, seen_up, seen_down = interleaved(refresh, registry, scrape_while)

    assert scrapes > 100 and seen_up and seen_down
    assert mixed == 0, f"{mixed} of {scrapes} scrapes mixed two refreshes"


def interleaved(work: Callable[[], None], registry: CollectorRegistry,
                scrape: Callable[[CollectorRegistry, threading.Event], tuple[int, ...]],
                times: int = REFRESHES) -> tuple[int, ...]:
    """Runs `work` `times` times in a thread while `scrape` scrapes, and no longer."""
    done, scraped = threading.Event(), threading.Event()

    def hammer() -> None:
        # A count, not a wall-clock deadline: time is the fake clock's.
        try:
            for _ in range(times):
                if scraped.is_set():
                    break
                work()
        finally:
            done.set()

    writer = threading.Thread(target=hammer, daemon=True)
    switch_every = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # let the threads interleave often
    writer.start()
    try:
        return scrape(registry, done)
    finally:
        scraped.set()
        writer.join(120.0)  # a bound on a hung writer only: it ends in about a second
        sys.setswitchinterval(switch_every)
        assert not writer.is_alive()


def scrape_while(registry: CollectorRegistry, done: threading.Event
                 ) -> tuple[int, int, bool, bool]:
    """Scrapes until `done`; counts the scrapes whose values come from two refreshes."""
    scrapes = mixed = 0
    seen_up = seen_down = False
    while not done.is_set() and scrapes < 20 * REFRESHES:
        values = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                  for family in registry.collect() for sample in family.samples}
        scrapes += 1
        up = values[("netatmo_up", ())]
        attempted = values[("netatmo_last_refresh_time", ())]
        cached = values[("netatmo_cache_updated_time", ())]
        measured = [v for (name, _), v in values.items()
                    if name == "netatmo_module_last_measurement_timestamp_seconds"]
        failures = values.get(("netatmo_refresh_errors_total",
                               (("reason", "server_error"),)), 0.0)
        if up:
            seen_up = True
            # The status of the fetch that made this snapshot, and the counts as they stood.
            mixed += attempted != cached or measured != [cached]
        elif attempted:
            seen_down = True
            mixed += not cached < attempted or failures == 0
    return scrapes, mixed, seen_up, seen_down


TOKEN_SCRAPES = 300
WITH_ENERGY = ("read_station", THERMOSTAT_SCOPE)
WEATHER_ONLY = ("read_station",)


class ScopeSwitchingEndpoint(FakeTokenEndpoint):
    """Grants, in turn, a token with the Energy scope that lives 10801 s and one without it
    that lives 10800 s: a scrape on a still clock tells them apart by the expiry."""

    def refresh(self, refresh_token: str) -> Token:
        with self._lock:
            self.refreshes.append(refresh_token)
            n = len(self.refreshes)
        return Token.from_grant(f"access-{n}", f"refresh-{n}", 10800.0 + n % 2,
                                self.clock.now(), WITH_ENERGY if n % 2 else WEATHER_ONLY)


def test_a_scrape_never_pairs_one_tokens_expiry_with_anothers_scopes() -> None:
    clock, log = FakeClock(), FakeLog()
    endpoint = ScopeSwitchingEndpoint(clock)
    tokens = TokenManager(endpoint, FakeTokenStore(fresh_token(clock)), clock, log)
    tokens.load()
    registry = CollectorRegistry(auto_describe=False)
    weather = WeatherState(RefreshSettings(60.0, WITH_ENERGY, False))
    read = service_reader(lambda: weather, tokens.status, EnergyState)
    registry.register(ScrapeCollector(read, WeatherCollector(read, clock, 1e9),
                                      EnergyCollector(read)))

    scrapes, mixed, energy_granted, energy_missing = interleaved(
        lambda: tokens.authorize_with_refresh_token("pasted"), registry, scrape_tokens_while,
        times=100 * TOKEN_SCRAPES)

    assert scrapes == TOKEN_SCRAPES and energy_granted and energy_missing  # both tokens seen
    assert mixed == 0, f"{mixed} of {scrapes} scrapes mixed the facts of two tokens"


def scrape_tokens_while(registry: CollectorRegistry, done: threading.Event
                        ) -> tuple[int, int, int, int]:
    """Scrapes TOKEN_SCRAPES times while tokens change (until `done`); counts the scrapes
    whose token expiry (the weather families) and Energy scope (the Energy families) come
    from two tokens."""
    scrapes = mixed = granted = missing = 0
    while not done.is_set() and scrapes < TOKEN_SCRAPES:
        values = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                  for family in registry.collect() for sample in family.samples}
        scrapes += 1
        lifetime = values[("netatmo_exporter_token_expiry_time", ())] - NOW
        energy_missing = values[("netatmo_exporter_scope_missing",
                                 (("scope", THERMOSTAT_SCOPE),))]
        if lifetime == 10801.0:
            granted += 1
            mixed += energy_missing != 0.0
        elif lifetime == 10800.0:
            missing += 1
            mixed += energy_missing != 1.0
    return scrapes, mixed, granted, missing


def test_published_error_counts_cannot_be_changed_under_a_reader() -> None:
    clock = FakeClock()
    log = FakeLog()
    tokens = authorized(clock, log)
    source = FakeWeatherSource()
    # Two failed refreshes of three tries each.
    source.errors["stations"] = [TransientError("HTTP 502", "server_error")] * 6
    refresher = Refresher(tokens, source, RefreshSettings(60.0, ("read_station",), False),
                          clock, log, clock.wait)
    refresher.poll_once()
    read = refresher.state()

    refresher.poll_once()

    assert read.error_counts == {"server_error": 1}
    assert refresher.state().error_counts == {"server_error": 2}
    assert refresher.state().generation == read.generation + 1
    with pytest.raises(TypeError):
        read.error_counts["server_error"] = 5  # type: ignore[index]
