"""Netatmo Energy without HTTP: parsing Netatmo's shapes, labels, the poller's rhythm and
faults, the collector through a real CollectorRegistry, and the status page's words."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from netatmo_exporter.adapters.metrics.energy_collector import EnergyCollector
from netatmo_exporter.adapters.metrics.scrape_collector import ScrapeCollector
from netatmo_exporter.adapters.metrics.weather_collector import WeatherCollector
from netatmo_exporter.adapters.netatmo.energy_payload import parse_home_status, parse_homes
from netatmo_exporter.adapters.pages.energy_view import home_problems, page_values, room_lines
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.authorization.tokens import AuthState, TokenManager
from netatmo_exporter.domain.energy.model import (
    EnergySnapshot,
    HomeReport,
    HomeSetup,
    HomeStatus,
    HomeUnavailable,
    ModuleSetup,
    RoomSetup,
    heating_module_rows,
    room_rows,
)
from netatmo_exporter.domain.energy.poller import EnergyPoller
from netatmo_exporter.domain.errors import (
    AccessTokenRejected,
    ApiError,
    BadResponse,
    MissingScope,
    NetatmoError,
    RateLimited,
    TransientError,
)
from netatmo_exporter.domain.read_model import service_reader
from netatmo_exporter.domain.weather.refresher import Refresher, RefreshSettings
from netatmo_exporter.simulator import demo_account
from netatmo_exporter.simulator.energy import CHALET, MAISON
from tests.unit.fakes import (
    FakeClock,
    FakeLog,
    FakeTokenEndpoint,
    FakeTokenStore,
    FakeWeatherSource,
    station,
)

INTERVAL = 60.0
ALL_SCOPES = ("read_station", "read_homecoach", "read_thermostat")
ACCOUNT = demo_account(frozen=True)
NOW = 1_700_000_000


def homes() -> tuple[HomeSetup, ...]:
    return parse_homes({"body": ACCOUNT.homesdata_body(NOW)})


def maison_status() -> HomeStatus:
    return parse_home_status({"body": ACCOUNT.homestatus_body(MAISON, NOW)}, MAISON)


class FakeEnergySource:
    """Parses the frozen demo account's Energy answers; queued errors are raised first."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.errors: dict[str, list[NetatmoError]] = {}

    def fetch_homes(self, access_token: str) -> tuple[HomeSetup, ...]:
        self._called("homesdata", access_token)
        return homes()

    def fetch_home_status(self, access_token: str, home_id: str) -> HomeStatus:
        self._called(home_id, access_token)
        body = ACCOUNT.homestatus_body(home_id, NOW)
        return parse_home_status({"body": body}, home_id)

    def _called(self, what: str, access_token: str) -> None:
        self.calls.append((what, access_token))
        queued = self.errors.get(what)
        if queued:
            raise queued.pop(0)

    def count(self, what: str) -> int:
        return sum(1 for called, _ in self.calls if called == what)


class World:
    def __init__(self, granted: tuple[str, ...] | None = ALL_SCOPES) -> None:
        self.clock = FakeClock()
        self.log = FakeLog()
        token = Token.from_grant("access-0", "refresh-0", 10800.0, self.clock.now(), granted)
        self.tokens = TokenManager(FakeTokenEndpoint(self.clock), FakeTokenStore(token),
                                   self.clock, self.log)
        self.tokens.load()
        self.source = FakeEnergySource()
        self.poller = EnergyPoller(self.tokens, self.source, INTERVAL, self.clock, self.log,
                                   wait=self.clock.wait)

    def registry(self) -> CollectorRegistry:
        refresher = Refresher(self.tokens, FakeWeatherSource((station(now=self.clock.now()),)),
                              RefreshSettings(INTERVAL, ALL_SCOPES, False), self.clock,
                              self.log, self.clock.wait)
        refresher.poll_once()
        registry = CollectorRegistry(auto_describe=False)
        read = service_reader(refresher.state, self.tokens.status, self.poller.state)
        registry.register(ScrapeCollector(read, WeatherCollector(read, self.clock, 3600.0),
                                          EnergyCollector(read)))
        return registry


# -- parsing ------------------------------------------------------------------------------


def test_homesdata_gives_rooms_and_modules_of_every_type() -> None:
    maison, chalet = homes()

    assert (maison.id, maison.name, maison.therm_mode) == (MAISON, "Maison", "schedule")
    assert [room.name for room in maison.rooms] == ["Salon", "Chambre", "Bureau",
                                                    "Salle de bain"]
    assert maison.rooms[0].module_ids == ("04:00:00:ee:00:01",)
    assert [m.type for m in maison.modules] == ["NAPlug", "NATherm1", "NRV", "NRV", "NRV",
                                                "NACamera"]
    assert maison.modules[4].name is None
    assert maison.modules[2].bridge == "70:ee:50:ee:00:01"
    assert chalet.therm_mode == "hg"


def test_homestatus_keeps_absent_fields_absent_never_zero() -> None:
    status = maison_status()
    rooms = {room.id: room for room in status.rooms}
    bureau = rooms["2255031730"]
    relay = next(m for m in status.modules if m.type == "NAPlug")

    assert rooms["2255031728"].measured_temperature == 20.5
    assert rooms["2255031728"].heating_power_request == 40
    assert rooms["2255031729"].open_window is True
    assert (bureau.reachable, bureau.measured_temperature, bureau.open_window) == (
        False, None, None)
    assert (relay.battery_level, relay.battery_state, relay.reachable) == (None, None, None)
    assert relay.wifi_strength == 52


def test_homestatus_with_errors_only_is_a_failure_of_that_home() -> None:
    with pytest.raises(HomeUnavailable, match="70:ee:50:ee:00:02: code 6"):
        parse_home_status({"body": ACCOUNT.homestatus_body(CHALET, NOW)}, CHALET)


def test_odd_entries_are_skipped_and_bad_shapes_refused() -> None:
    payload = {"body": {"homes": [
        {"id": "h1", "rooms": [{"name": "no id"}, "text", {"id": "r1", "module_ids": [1, "m1"]}],
         "modules": [{"id": "m1"}, {"id": "m2", "type": "BNXM", "weird": {"a": [1]}}]},
        {"name": "home without id"}, 7]}}
    home, = parse_homes(payload)
    status = parse_home_status({"body": {"home": {"rooms": [
        {"id": "r1", "therm_measured_temperature": "19", "open_window": 1,
         "heating_power_request": True}]}}}, "h1")

    assert [room.id for room in home.rooms] == ["r1"]
    assert home.rooms[0].module_ids == ("m1",)
    assert [(m.id, m.type) for m in home.modules] == [("m1", "unknown"), ("m2", "BNXM")]
    assert status.home_id == "h1"
    assert (status.rooms[0].measured_temperature, status.rooms[0].open_window,
            status.rooms[0].heating_power_request) == (None, None, None)
    with pytest.raises(BadResponse):
        parse_homes({"body": {"devices": []}})
    with pytest.raises(BadResponse):
        parse_home_status({"status": "ok"}, "h1")


def test_a_module_listed_in_errors_is_unreachable() -> None:
    snapshot = EnergySnapshot((HomeReport(
        HomeSetup("h1", "Home", modules=(ModuleSetup("m1", "NRV", "Valve", "r1"),),
                  rooms=(RoomSetup("r1", "Room"),)),
        parse_home_status({"body": {"errors": [{"code": 6, "id": "m1"}],
                                    "home": {"id": "h1", "rooms": [{"id": "r1"}]}}}, "h1")),),
        fetched_at=NOW)

    row, = heating_module_rows(snapshot)
    assert row.status is not None and row.status.reachable is False


# -- labels -------------------------------------------------------------------------------


def test_unnamed_rooms_and_modules_get_their_id_and_duplicates_are_told_apart() -> None:
    setup = HomeSetup("h1", None, rooms=(RoomSetup("r1", "Chambre"), RoomSetup("r2", "Chambre"),
                                          RoomSetup("r3")),
                      modules=(ModuleSetup("v1", "NRV", "Vanne", "r1"),
                               ModuleSetup("v2", "NRV", "Vanne", "r1"),
                               ModuleSetup("v3", "NRV", None, "r3")))
    twin = HomeSetup("h2", "id-h1")
    snapshot = EnergySnapshot((HomeReport(setup), HomeReport(twin)), fetched_at=NOW)

    assert [(r.room, r.home) for r in room_rows(snapshot)] == [
        ("Chambre (r1)", "id-h1 (h1)"), ("Chambre (r2)", "id-h1 (h1)"), ("id-r3", "id-h1 (h1)")]
    assert [(m.module, m.room) for m in heating_module_rows(snapshot)] == [
        ("Vanne (v1)", "Chambre (r1)"), ("Vanne (v2)", "Chambre (r1)"), ("id-v3", "id-r3")]


# -- the poller ---------------------------------------------------------------------------


def test_setup_is_read_at_start_then_hourly_and_status_every_interval() -> None:
    world = World()

    waits = [world.poller.poll_once()]
    for _ in range(3):
        world.clock.advance(INTERVAL)
        waits.append(world.poller.poll_once())
    world.clock.advance(3600)
    world.poller.poll_once()

    assert waits == [INTERVAL] * 4
    assert world.source.count("homesdata") == 2
    assert world.source.count(MAISON) == 5
    assert world.source.count(CHALET) == 5


def test_a_new_authorization_reads_the_setup_again() -> None:
    world = World()
    world.poller.poll_once()

    world.poller.loop.wake()
    world.poller.poll_once()

    assert world.source.count("homesdata") == 2


def test_one_home_failing_leaves_the_others_and_is_counted() -> None:
    world = World()
    world.source.errors[MAISON] = [ApiError("Netatmo homestatus: API error code 21")]

    world.poller.poll_once()
    first = world.poller.state().snapshot
    world.clock.advance(INTERVAL)
    world.poller.poll_once()

    assert first is not None
    assert [(r.setup.name, r.error_reason) for r in first.homes] == [
        ("Maison", "api_error"), ("Chalet", "home_errors")]
    assert world.poller.state().error_counts == {(MAISON, "api_error"): 1,
                                                 (CHALET, "home_errors"): 2}
    second = world.poller.state().snapshot
    assert second is not None and second.homes[0].status is not None


def test_missing_scope_is_reported_once_and_not_asked_again() -> None:
    world = World(granted=("read_station", "read_homecoach"))

    for _ in range(3):
        world.poller.poll_once()
        world.clock.advance(INTERVAL)

    assert world.source.calls == []
    assert world.log.names("warning") == ["endpoint_skipped"]
    assert world.tokens.status().state is AuthState.MISSING_SCOPE
    snapshot = world.poller.state().snapshot
    assert snapshot is not None and snapshot.scope_missing


def test_code_13_from_homesdata_is_a_missing_scope_reported_once() -> None:
    world = World(granted=None)
    world.source.errors["homesdata"] = [MissingScope("homesdata")]

    world.poller.poll_once()
    world.poller.poll_once()

    assert world.source.count("homesdata") == 1
    assert world.log.names("warning") == ["endpoint_skipped"]
    sample = world.registry().get_sample_value(
        "netatmo_exporter_scope_missing", {"scope": "read_thermostat"})
    assert sample == 1.0


def test_a_rejected_access_token_is_renewed_and_the_call_repeated() -> None:
    world = World()
    world.source.errors["homesdata"] = [AccessTokenRejected("code 3")]

    world.poller.poll_once()

    tokens = [token for what, token in world.source.calls if what == "homesdata"]
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    snapshot = world.poller.state().snapshot
    assert snapshot is not None and len(snapshot.homes) == 2


def test_rate_limiting_backs_off_and_keeps_the_last_homes() -> None:
    world = World()
    world.poller.poll_once()
    world.clock.advance(INTERVAL)
    world.source.errors[MAISON] = [RateLimited("code 26")]

    wait = world.poller.poll_once()

    snapshot = world.poller.state().snapshot
    assert wait == INTERVAL * 2
    assert snapshot is not None and snapshot.error_reason == "rate_limited"
    assert [r.status is not None for r in snapshot.homes] == [True, False]
    assert world.poller.state().error_counts[("", "rate_limited")] == 1


# -- the collector ------------------------------------------------------------------------


def test_collector_exports_rooms_modules_and_homes_in_base_units() -> None:
    world = World()
    world.poller.poll_once()
    registry = world.registry()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    salon = {"room": "Salon", "home": "Maison"}
    assert value("netatmo_room_temperature_celsius", **salon) == 20.5
    assert value("netatmo_room_setpoint_temperature_celsius", **salon) == 21.0
    assert value("netatmo_room_heating_power_request_ratio", **salon) == 0.4
    assert value("netatmo_room_setpoint_mode", mode="schedule", **salon) == 1.0
    assert value("netatmo_room_setpoint_mode", mode="manual", **salon) == 0.0
    assert value("netatmo_room_open_window", room="Chambre", home="Maison") == 1.0
    assert value("netatmo_room_reachable", room="Bureau", home="Maison") == 0.0
    assert value("netatmo_room_temperature_celsius", room="Bureau", home="Maison") is None
    bureau = {"module": "Vanne bureau", "room": "Bureau", "home": "Maison"}
    assert value("netatmo_module_reachable", **bureau) == 0.0
    assert value("netatmo_module_battery_volts", **bureau) == 2.45
    assert value("netatmo_module_battery_state", state="low", **bureau) == 1.0
    assert value("netatmo_module_battery_state", state="full", **bureau) == 0.0
    thermostat = {"module": "Thermostat", "room": "Salon", "home": "Maison"}
    assert value("netatmo_module_boiler_on", **thermostat) == 1.0
    assert value("netatmo_module_rf_signal_strength", **thermostat) == 62.0
    unnamed = {"module": "id-09:00:00:ee:00:03", "room": "Salle de bain", "home": "Maison"}
    assert value("netatmo_module_battery_volts", **unnamed) == 3.1
    assert value("netatmo_home_heating_mode", home="Chalet", mode="hg") == 1.0
    assert value("netatmo_home_status_up", home="Maison") == 1.0
    assert value("netatmo_home_status_up", home="Chalet") == 0.0
    assert value("netatmo_energy_errors_total", home="Chalet", reason="home_errors") == 1.0
    assert value("netatmo_room_temperature_celsius", room="Séjour", home="Chalet") is None
    assert value("netatmo_exporter_scope_missing", scope="read_thermostat") == 0.0


def test_unknown_module_types_get_module_health_only() -> None:
    world = World()
    world.poller.poll_once()
    registry = world.registry()
    camera = {"module": "Caméra entrée", "room": "", "home": "Maison"}

    text = generate_latest(registry).decode()
    camera_lines = [line for line in text.splitlines() if 'module="Caméra entrée"' in line]

    assert registry.get_sample_value("netatmo_module_wifi_signal_strength", camera) == 66.0
    assert sorted(line.split("{")[0] for line in camera_lines) == [
        "netatmo_module_info", "netatmo_module_wifi_signal_strength"]


def test_weather_and_heating_modules_share_each_family_once() -> None:
    world = World()
    world.poller.poll_once()

    text = generate_latest(world.registry()).decode()

    helps = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP")]
    assert len(helps) == len(set(helps))
    assert 'netatmo_module_reachable{home="Home",module="Salon",station="Maison"}' not in text
    assert 'netatmo_module_info{bridge="70:ee:50:ee:00:01"' in text
    assert 'netatmo_sensor_temperature_celsius{home="Home",module="Salon",station="Maison"}' \
        in text


# -- status page words --------------------------------------------------------------------


def test_rooms_table_in_plain_words() -> None:
    world = World()
    world.poller.poll_once()

    lines = {line.room: line for line in room_lines(world.poller.state().snapshot)}

    assert lines["Salon"].home == "Maison"
    assert lines["Chambre"].home == ""
    assert lines["Salon"].temperature == "20.5\u00a0°C"
    assert lines["Salon"].setpoint == "21.0\u00a0°C (schedule)"
    assert lines["Salon"].demand == "40\u00a0%"
    assert (lines["Chambre"].window, lines["Chambre"].health) == ("open", "window-open")
    assert (lines["Bureau"].health, lines["Bureau"].temperature) == ("unreachable",
                                                                     "unreachable")
    assert lines["Bureau"].batteries == "Vanne bureau: low, 2.45\u00a0V (unreachable)"
    assert lines["Salle de bain"].setpoint == "22.0\u00a0°C (boost)"
    assert (lines["Séjour"].health, lines["Séjour"].temperature) == ("no-data", "no data")
    problems = home_problems(world.poller.state().snapshot)
    assert [p.home for p in problems] == ["Chalet"]
    assert "code 6" in problems[0].message


def test_status_page_without_energy_shows_the_hint_only() -> None:
    values: dict[str, Any] = page_values(None)
    snapshot = EnergySnapshot((), fetched_at=NOW, error_reason="transient",
                              error_message="Netatmo homesdata: connection failed")

    assert values["energy_enabled"] is False
    assert "read_thermostat" in values["energy_hint"]
    assert [p.message for p in home_problems(snapshot)] == [
        "Netatmo homesdata: connection failed"]


def test_energy_only_scope_is_no_weather_failure() -> None:
    world = World(granted=("read_thermostat",))
    weather = FakeWeatherSource((station(now=world.clock.now()),))
    refresher = Refresher(world.tokens, weather, RefreshSettings(INTERVAL, ("read_thermostat",),
                                                                 False), world.clock, world.log,
                                world.clock.wait)

    refresher.poll_once()
    world.poller.poll_once()

    weather_state = refresher.state()
    assert weather_state.status.ok and weather_state.snapshot is not None
    assert weather_state.snapshot.stations == () and weather.calls == []
    assert world.tokens.status().state is AuthState.OK
    snapshot = world.poller.state().snapshot
    assert snapshot is not None and len(snapshot.homes) == 2


def test_a_failed_hourly_setup_read_keeps_the_known_homes_and_tries_again() -> None:
    world = World()
    world.poller.poll_once()
    world.clock.advance(3600)
    world.source.errors["homesdata"] = [ApiError("Netatmo homesdata: API error code 1")]

    world.poller.poll_once()
    kept = world.poller.state().snapshot
    world.clock.advance(INTERVAL)
    world.poller.poll_once()

    assert kept is not None and kept.error_reason is None
    assert [r.status is not None for r in kept.homes] == [True, False]
    assert world.poller.state().error_counts[("", "api_error")] == 1
    assert world.source.count("homesdata") == 3
    assert "homesdata_failed" in world.log.names("warning")


def test_a_first_setup_read_failing_is_shown_and_counted() -> None:
    world = World()
    world.source.errors["homesdata"] = [TransientError("Netatmo homesdata: HTTP 502",
                                                       "server_error")] * 3  # every try

    wait = world.poller.poll_once()

    snapshot = world.poller.state().snapshot
    assert wait == INTERVAL
    assert snapshot is not None and snapshot.homes == ()
    assert world.poller.state().error_counts == {("", "server_error"): 1}
    assert [(p.home, p.message) for p in home_problems(snapshot)] == [
        ("", "Netatmo homesdata: HTTP 502")]
    assert world.registry().get_sample_value(
        "netatmo_energy_errors_total", {"home": "", "reason": "server_error"}) == 1.0


def test_a_name_filtered_scrape_finds_room_and_shared_module_families() -> None:
    world = World()
    world.poller.poll_once()
    registry = world.registry()

    only = registry.restricted_registry(["netatmo_room_temperature_celsius",
                                         "netatmo_module_reachable"])
    text = generate_latest(only).decode()

    assert 'netatmo_room_temperature_celsius{home="Maison",room="Salon"} 20.5' in text
    assert 'netatmo_module_reachable{home="Maison",module="Vanne bureau",room="Bureau"} 0.0' \
        in text
    assert "netatmo_room_setpoint" not in text
