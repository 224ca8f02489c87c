"""Netatmo Energy over real HTTP on loopback: the httpx client against the simulated cloud,
and the exporter process serving rooms, heating modules and homes beside the weather."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.domain.energy.model import HomeUnavailable
from netatmo_exporter.domain.errors import ApiError, MissingScope
from netatmo_exporter.simulator import FakeNetatmoCloud, Fault
from netatmo_exporter.simulator.energy import CHALET, MAISON
from tests.conftest import exporter_args
from tests.integration.test_promtool import parse_scrape
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, ExporterProcess, seed_token, wait_until

ENERGY_SCOPES = ("read_station", "read_homecoach", "read_thermostat")
SCOPE_FLAG = ("--scope", " ".join(ENERGY_SCOPES))


@pytest.fixture
def client(cloud: FakeNetatmoCloud) -> Iterator[NetatmoClient]:
    http = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock(),
                         sleep=lambda _: None)
    yield http
    http.close()


def access_token(cloud: FakeNetatmoCloud, scope: tuple[str, ...] = ENERGY_SCOPES) -> str:
    return str(cloud.issue_tokens(scope)["access_token"])


def test_client_reads_homes_and_each_home_status(cloud: FakeNetatmoCloud,
                                                 client: NetatmoClient) -> None:
    token = access_token(cloud)

    homes = client.fetch_homes(token)
    status = client.fetch_home_status(token, MAISON)

    assert [home.name for home in homes] == ["Maison", "Chalet"]
    assert {room.id for room in status.rooms} == {room.id for room in homes[0].rooms}
    assert {m.type for m in status.modules} == {"NAPlug", "NATherm1", "NRV", "NACamera"}
    assert client.request_counts() == {("homesdata", "ok"): 1, ("homestatus", "ok"): 1}
    targets = [record.target for record in cloud.requests()]
    assert targets == ["/api/homesdata", f"/api/homestatus?home_id={MAISON}"]
    assert all(record.has_authorization for record in cloud.requests())


def test_client_reports_a_home_with_errors_only_and_an_api_error(
        cloud: FakeNetatmoCloud, client: NetatmoClient) -> None:
    token = access_token(cloud)
    cloud.inject("homestatus", Fault.api_error(400, 21, "Invalid home_id"))

    with pytest.raises(ApiError, match="code 21"):
        client.fetch_home_status(token, MAISON)
    with pytest.raises(HomeUnavailable, match="code 6"):
        client.fetch_home_status(token, CHALET)
    assert client.fetch_home_status(token, MAISON).rooms
    with pytest.raises(ApiError, match="code 21"):
        client.fetch_home_status(token, "not-a-home")
    assert cloud.count("home_not_found") == 1


def test_client_raises_missing_scope_without_read_thermostat(
        cloud: FakeNetatmoCloud, client: NetatmoClient) -> None:
    token = access_token(cloud, ("read_station",))

    with pytest.raises(MissingScope):
        client.fetch_homes(token)
    assert cloud.count("missing_scope") == 1


def wait_for(exporter: ExporterProcess, text: str, timeout: float = 20.0) -> str:
    return exporter.metrics_when(lambda body: text in body, f"{text!r} on /metrics", timeout)


def test_exporter_serves_rooms_beside_the_weather_while_one_home_fails(
        cloud: FakeNetatmoCloud, token_path: Path, exporters: list[ExporterProcess],
        tmp_path: Path) -> None:
    seed_token(cloud, token_path, scope=ENERGY_SCOPES)
    exporter = ExporterProcess(exporter_args(cloud, token_path, *SCOPE_FLAG), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)

    body = wait_for(exporter, 'netatmo_energy_errors_total{home="Chalet"')
    scrape = parse_scrape(body)

    assert scrape.value("netatmo_up") == 1.0
    assert scrape.value("netatmo_sensor_temperature_celsius", module="Salon",
                        station="Maison (Lyon)", home="Maison") == 21.5
    assert scrape.value("netatmo_room_temperature_celsius", room="Salon", home="Maison") == 20.5
    assert scrape.value("netatmo_room_open_window", room="Chambre", home="Maison") == 1.0
    assert scrape.value("netatmo_module_reachable", module="Vanne bureau", room="Bureau",
                        home="Maison") == 0.0
    assert scrape.value("netatmo_module_boiler_on", module="Thermostat", room="Salon",
                        home="Maison") == 1.0
    assert scrape.value("netatmo_home_status_up", home="Maison") == 1.0
    assert scrape.value("netatmo_home_status_up", home="Chalet") == 0.0
    assert scrape.value("netatmo_energy_errors_total", home="Chalet",
                        reason="home_errors") == 1.0
    # Chalet's answer is HTTP 200 with errors inside: a request that went well, a home
    # that did not.
    assert scrape.value("netatmo_api_requests_total", endpoint="homestatus",
                        outcome="ok") == 2.0
    assert scrape.value("netatmo_api_requests_total", endpoint="homesdata",
                        outcome="ok") == 1.0
    # Present before the first one, so that increase() in NetatmoRateLimited sees it.
    assert scrape.value("netatmo_api_requests_total", endpoint="homestatus",
                        outcome="rate_limited") == 0.0
    assert scrape.value("netatmo_exporter_scope_missing", scope="read_thermostat") == 0.0
    assert cloud.count("homesdata") == 1
    _, page = exporter.get("/")
    assert 'id="rooms"' in page and "Vanne bureau: low, 2.45\u00a0V (unreachable)" in page
    assert "Home Chalet: Netatmo gave no heating state." in page
    assert "code 6" in page


def test_exporter_without_the_granted_scope_says_so_once_and_keeps_the_weather(
        cloud: FakeNetatmoCloud, token_path: Path, exporters: list[ExporterProcess],
        tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    exporter = ExporterProcess(
        exporter_args(cloud, token_path, *SCOPE_FLAG, "--refresh-interval", "1s"), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)

    wait_for(exporter, 'netatmo_exporter_scope_missing{scope="read_thermostat"} 1.0')
    wait_for(exporter, "netatmo_up 1.0")
    wait_until("three weather refreshes", lambda: cloud.count("getstationsdata") >= 3)
    _, body = exporter.get("/metrics")
    scrape = parse_scrape(body)

    assert scrape.value("netatmo_sensor_temperature_celsius", module="Salon",
                        station="Maison (Lyon)", home="Maison") == 21.5
    assert scrape.value("netatmo_exporter_authorization_state", state="missing_scope") == 1.0
    assert cloud.count("getstationsdata") >= 3
    assert cloud.count("homesdata") == cloud.count("homestatus") == 0
    assert exporter.logs().count("scope=read_thermostat") == 1
    assert scrape.series("netatmo_room_temperature_celsius") == []
    _, page = exporter.get("/")
    assert 'data-state="missing-scope"' in page


def test_exporter_without_read_thermostat_in_scope_never_calls_energy(
        cloud: FakeNetatmoCloud, token_path: Path, exporters: list[ExporterProcess],
        tmp_path: Path) -> None:
    seed_token(cloud, token_path, scope=ENERGY_SCOPES)
    exporter = ExporterProcess(exporter_args(cloud, token_path), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)

    body = wait_for(exporter, "netatmo_up 1.0")
    _, page = exporter.get("/")

    assert "netatmo_room_" not in body and 'scope="read_thermostat"' not in body
    assert 'endpoint="homesdata"' not in body
    assert cloud.count("homesdata") == 0
    assert 'id="energy-hint"' in page and 'id="rooms"' not in page
