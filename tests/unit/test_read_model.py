"""One read model: a scrape renders one published state, never a mix of two fetches."""

from __future__ import annotations

import dataclasses
import sys
import threading

import pytest
from prometheus_client import CollectorRegistry

from netatmo_exporter.adapters.collector import ApiCounterCollector, NetatmoCollector
from netatmo_exporter.domain.authorization import TokenManager
from netatmo_exporter.domain.errors import TransientError
from netatmo_exporter.domain.model import Readings, Station
from netatmo_exporter.domain.refresher import Refresher, RefreshSettings
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
    registry.register(NetatmoCollector(refresher.state, tokens, clock, 1e9))
    registry.register(ApiCounterCollector(dict, lambda: refresher.state().error_counts))
    done = threading.Event()

    def hammer() -> None:
        # A count, not a wall-clock deadline: time is the fake clock's, 10 s a refresh.
        try:
            for _ in range(REFRESHES):
                refresher.refresh_once()
                clock.advance(10.0)  # within Netatmo's 500 calls an hour
        finally:
            done.set()

    writer = threading.Thread(target=hammer, daemon=True)
    switch_every = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # let the threads interleave often
    writer.start()
    try:
        scrapes, mixed, seen_up, seen_down = scrape_while(registry, done)
    finally:
        writer.join(120.0)  # a bound on a hung writer only: it ends in about a second
        sys.setswitchinterval(switch_every)

    assert not writer.is_alive()
    assert scrapes > 100 and seen_up and seen_down
    assert mixed == 0, f"{mixed} of {scrapes} scrapes mixed two refreshes"


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


def test_published_error_counts_cannot_be_changed_under_a_reader() -> None:
    clock = FakeClock()
    log = FakeLog()
    tokens = authorized(clock, log)
    source = FakeWeatherSource()
    # Two failed refreshes of three tries each.
    source.errors["stations"] = [TransientError("HTTP 502", "server_error")] * 6
    refresher = Refresher(tokens, source, RefreshSettings(60.0, ("read_station",), False),
                          clock, log, clock.wait)
    refresher.refresh_once()
    read = refresher.state()

    refresher.refresh_once()

    assert read.error_counts == {"server_error": 1}
    assert refresher.state().error_counts == {"server_error": 2}
    assert refresher.state().generation == read.generation + 1
    with pytest.raises(TypeError):
        read.error_counts["server_error"] = 5  # type: ignore[index]
