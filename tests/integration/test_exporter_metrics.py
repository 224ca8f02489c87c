"""The exporter process against the frozen demo account: SPEC section 7 names, labels
and values for every module type, plus the small HTTP endpoints and the log format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netatmo_exporter import __version__
from netatmo_exporter.simulator import FakeNetatmoCloud, Fault, demo_account
from tests.conftest import exporter_args
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, ExporterProcess, seed_token

GO_SENSOR_FAMILIES = (
    "netatmo_sensor_updated", "netatmo_sensor_temperature_celsius",
    "netatmo_sensor_humidity_percent", "netatmo_sensor_co2_ppm", "netatmo_sensor_noise_db",
    "netatmo_sensor_pressure_mb", "netatmo_sensor_wind_strength_kph",
    "netatmo_sensor_wind_direction_degrees", "netatmo_sensor_rain_amount_mm",
    "netatmo_sensor_battery_percent", "netatmo_sensor_wifi_signal_strength",
    "netatmo_sensor_rf_signal_strength",
)
GO_EXPORTER_FAMILIES = (
    "netatmo_up", "netatmo_refresh_interval_seconds", "netatmo_last_refresh_time",
    "netatmo_last_refresh_duration_seconds", "netatmo_cache_updated_time",
    "netatmo_exporter_token_valid", "netatmo_exporter_token_expiry_time",
)
MAISON = {"station": "Maison (Lyon)", "home": "Maison"}
ATELIER = {"station": "Maison", "home": "Maison"}
CHALET = {"station": "Chalet", "home": "Chalet"}
JARDIN = 'Jardin "Süd" \\ Terrasse'


@dataclass
class Scraped:
    exposition: str
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    types: dict[str, str]
    exporter: ExporterProcess
    cloud: FakeNetatmoCloud

    def value(self, name: str, module: str, **where: str) -> float | None:
        return self.samples.get((name, frozenset({"module": module, **where}.items())))

    def modules_in(self, name: str) -> list[str]:
        return [dict(labels)["module"] for family, labels in self.samples if family == name]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    workdir = tmp_path_factory.mktemp("metrics")
    token_path = workdir / "token.json"
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=demo_account(frozen=True)) as cloud:
        seed_token(cloud, token_path, refresh_only=True)
        exporter = ExporterProcess(
            exporter_args(cloud, token_path, "--log-format", "json", "--log-level", "debug"),
            workdir)
        try:
            exporter.start(wait_ready=True)
            status, body = exporter.get("/metrics")
            assert status == 200
            samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
            types: dict[str, str] = {}
            for family in text_string_to_metric_families(body):
                types[family.name] = family.type
                for sample in family.samples:
                    key = (sample.name, frozenset(sample.labels.items()))
                    assert key not in samples, f"duplicate series {key}"
                    samples[key] = sample.value
            yield Scraped(body, samples, types, exporter, cloud)
        finally:
            if exporter.proc is not None and exporter.proc.poll() is None:
                exporter.terminate()


def test_go_families_are_gauges(scraped: Scraped) -> None:
    for name in (*GO_EXPORTER_FAMILIES, *GO_SENSOR_FAMILIES):
        assert scraped.types.get(name) == "gauge", name
    assert scraped.samples[("netatmo_up", frozenset())] == 1.0
    assert scraped.samples[("netatmo_refresh_interval_seconds", frozenset())] == 480.0
    assert scraped.samples[("netatmo_exporter_token_valid", frozenset())] == 1.0


@pytest.mark.parametrize(("family", "module", "where", "expected"), [
    # NAMain
    ("netatmo_sensor_temperature_celsius", "Salon", MAISON, 21.5),
    ("netatmo_sensor_humidity_percent", "Salon", MAISON, 45.0),
    ("netatmo_sensor_co2_ppm", "Salon", MAISON, 620.0),
    ("netatmo_sensor_noise_db", "Salon", MAISON, 38.0),
    ("netatmo_sensor_pressure_mb", "Salon", MAISON, 1016.2),
    ("netatmo_sensor_wifi_signal_strength", "Salon", MAISON, 56.0),
    # NAModule1, with a quote, a backslash and non-ASCII in its name
    ("netatmo_sensor_temperature_celsius", JARDIN, MAISON, 12.3),
    ("netatmo_sensor_humidity_percent", JARDIN, MAISON, 71.0),
    ("netatmo_sensor_battery_percent", JARDIN, MAISON, 76.0),
    ("netatmo_sensor_rf_signal_strength", JARDIN, MAISON, 64.0),
    # NAModule2
    ("netatmo_sensor_wind_strength_kph", "Anémomètre", MAISON, 14.0),
    ("netatmo_sensor_wind_direction_degrees", "Anémomètre", MAISON, 250.0),
    ("netatmo_sensor_battery_percent", "Anémomètre", MAISON, 88.0),
    # NAModule3
    ("netatmo_sensor_rain_amount_mm", "Pluviomètre", MAISON, 0.303),
    ("netatmo_sensor_rf_signal_strength", "Pluviomètre", MAISON, 80.0),
    # NAModule4, two of them named "Chambre"
    ("netatmo_sensor_temperature_celsius", "Chambre (03:00:00:00:00:01)", MAISON, 19.8),
    ("netatmo_sensor_temperature_celsius", "Chambre (03:00:00:00:00:02)", MAISON, 20.4),
    ("netatmo_sensor_co2_ppm", "Chambre (03:00:00:00:00:02)", MAISON, 540.0),
    # station without station_name, unnamed module
    ("netatmo_sensor_temperature_celsius", "Atelier", ATELIER, 17.9),
    ("netatmo_sensor_temperature_celsius", "id-02:00:00:00:00:02", ATELIER, 11.7),
    # second home; module id with a space; negative value
    ("netatmo_sensor_temperature_celsius", "Séjour", CHALET, 18.2),
    ("netatmo_sensor_temperature_celsius", "Balcon", CHALET, -3.5),
    # NHC: same families as a station
    ("netatmo_sensor_temperature_celsius", "Chambre", {"station": "Chambre", "home": ""}, 20.7),
    ("netatmo_sensor_co2_ppm", "Chambre", {"station": "Chambre", "home": ""}, 650.0),
    ("netatmo_sensor_noise_db", "Chambre", {"station": "Chambre", "home": ""}, 35.0),
    ("netatmo_sensor_pressure_mb", "Chambre", {"station": "Chambre", "home": ""}, 1015.8),
    ("netatmo_sensor_co2_ppm", "Salle de jeux", {"station": "Salle de jeux", "home": ""},
     1210.0),
])
def test_values_for_every_module_type(
    scraped: Scraped, family: str, module: str, where: dict[str, str], expected: float
) -> None:
    assert scraped.value(family, module, **where) == pytest.approx(expected)


def test_label_values_are_escaped_in_the_exposition(scraped: Scraped) -> None:
    assert 'module="Jardin \\"Süd\\" \\\\ Terrasse"' in scraped.exposition


def test_sensor_updated_is_the_measurement_time(scraped: Scraped) -> None:
    updated = scraped.value("netatmo_sensor_updated", "Salon", **MAISON)
    assert updated is not None
    assert 200 <= scraped.cloud.data_time() - updated <= 240 + 60


@pytest.mark.parametrize("module", ["Grenier", "Cave"])
def test_stale_or_unreachable_module_exports_no_sensor_series(
    scraped: Scraped, module: str
) -> None:
    sensor_families = {name for name, _ in scraped.samples if name.startswith("netatmo_sensor_")}
    assert sensor_families >= set(GO_SENSOR_FAMILIES)
    for name in sensor_families:
        assert module not in scraped.modules_in(name), name


def test_never_paired_module_exports_no_battery_or_radio_reading(scraped: Scraped) -> None:
    for name, labels in scraped.samples:
        if "battery" in name or "_rf_" in name or "sensor" in name:
            assert dict(labels).get("module") != "Pluie", name


def test_every_module_series_carries_module_station_and_home(scraped: Scraped) -> None:
    for name, labels in scraped.samples:
        if name.startswith("netatmo_sensor_"):
            assert {"module", "station", "home"} <= dict(labels).keys(), name


def test_version_and_health_endpoints(scraped: Scraped) -> None:
    status, body = scraped.exporter.get("/version")
    assert status == 200
    answer = json.loads(body)
    assert answer["version"] == __version__ and "commit" in answer
    assert scraped.exporter.get("/-/healthy")[0] == 200
    assert scraped.exporter.get("/-/ready")[0] == 200


def test_json_logs_without_secrets(scraped: Scraped) -> None:
    scraped.exporter.get("/metrics")
    lines = [line for line in scraped.exporter.logs().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]
    assert {"refresh_ok", "listening"} <= {event["event"] for event in events}
    assert all({"level", "ts"} <= event.keys() for event in events)
    secrets = scraped.cloud.issued_secrets()
    assert len(secrets) >= 3
    assert [s for s in secrets if any(s in line for line in lines)] == []


def test_ready_is_503_until_the_first_snapshot(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    seed_token(cloud, token_path)
    cloud.inject("getstationsdata", Fault.delay(3.0))
    exporter = ExporterProcess(exporter_args(cloud, token_path), tmp_path)
    exporters.append(exporter)
    exporter.start()

    status, body = exporter.get("/-/ready")

    assert status == 503 and "not ready" in body
    exporter.wait_for("/-/ready", timeout=15)
    assert exporter.terminate() == 0
    first = exporter.logs().splitlines()[0]
    assert first.startswith("ts=") and " level=" in first and " event=" in first
