"""What a scrape of the frozen demo account shows, beyond the Go-compatible names: every
dashboard field of every module type in its base unit, the Home Coach in the same
families, what is wrong with the stale, unreachable and never-paired modules, favourites,
and an endpoint whose scope was not granted."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.adapters.metrics.docs import METRICS
from netatmo_exporter.adapters.metrics.history_collector import HISTORY_METRICS
from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.integration.test_promtool import (
    DASHBOARD,
    RULES,
    DemoScrape,
    demo_exporter,
    parse_scrape,
)
from tests.support.harness import ExporterProcess, seed_token

SALON, JARDIN, WIND, RAIN = "70:ee:50:00:00:01", "02:00:00:00:00:01", "06:00:00:00:00:01", \
    "05:00:00:00:00:01"
CHAMBRE_1, BALCON = "03:00:00:00:00:01", "02:00:00:00:00 03"
CAVE, GRENIER, PLUIE = "03:00:00:00:00:03", "03:00:00:00:00:04", "05:00:00:00:00:02"
COACH_1, COACH_2 = "70:ee:50:00:bb:01", "70:ee:50:00:bb:02"
FAVORITE_MAIN, FAVORITE_OUTDOOR = "70:ee:50:00:ff:01", "02:00:00:00:ff:01"
KPH = 1 / 3.6

# (module id, metric, value in the metric's unit) for each SPEC appendix field.
EXPECTED = [
    # NAMain: the base station.
    (SALON, "netatmo_sensor_temperature_celsius", 21.5),
    (SALON, "netatmo_sensor_humidity_percent", 45.0),
    (SALON, "netatmo_sensor_co2_ppm", 620.0),
    (SALON, "netatmo_sensor_noise_db", 38.0),
    (SALON, "netatmo_sensor_pressure_mb", 1016.2),
    (SALON, "netatmo_sensor_absolute_pressure_pascals", 99540.0),
    (SALON, "netatmo_sensor_temperature_min_today_celsius", 20.1),
    (SALON, "netatmo_sensor_temperature_max_today_celsius", 22.8),
    (SALON, "netatmo_sensor_temperature_trend", 1.0),
    (SALON, "netatmo_sensor_pressure_trend", 0.0),
    (SALON, "netatmo_module_wifi_signal_strength", 56.0),
    (SALON, "netatmo_module_reachable", 1.0),
    # NAModule1: outdoor.
    (JARDIN, "netatmo_sensor_temperature_celsius", 12.3),
    (JARDIN, "netatmo_sensor_humidity_percent", 71.0),
    (JARDIN, "netatmo_sensor_temperature_min_today_celsius", 8.4),
    (JARDIN, "netatmo_sensor_temperature_max_today_celsius", 15.9),
    (JARDIN, "netatmo_sensor_temperature_trend", -1.0),
    (JARDIN, "netatmo_module_battery_ratio", 0.76),
    (JARDIN, "netatmo_module_battery_volts", 5.21),
    (JARDIN, "netatmo_module_rf_signal_strength", 64.0),
    (BALCON, "netatmo_sensor_temperature_celsius", -3.5),
    (BALCON, "netatmo_sensor_temperature_trend", 1.0),
    # NAModule2: wind gauge (Netatmo's km/h become m/s in the new names).
    (WIND, "netatmo_sensor_wind_strength_kph", 14.0),
    (WIND, "netatmo_sensor_wind_direction_degrees", 250.0),
    (WIND, "netatmo_sensor_gust_strength_meters_per_second", 31 * KPH),
    (WIND, "netatmo_sensor_gust_direction_degrees", 245.0),
    (WIND, "netatmo_sensor_wind_max_today_meters_per_second", 42 * KPH),
    (WIND, "netatmo_sensor_wind_max_today_direction_degrees", 260.0),
    # NAModule3: rain gauge (mm become meters in the new names).
    (RAIN, "netatmo_sensor_rain_amount_mm", 0.303),
    (RAIN, "netatmo_sensor_rain_last_hour_meters", 0.001212),
    (RAIN, "netatmo_sensor_rain_today_meters", 0.0078),
    # NAModule4: extra indoor.
    (CHAMBRE_1, "netatmo_sensor_temperature_celsius", 19.8),
    (CHAMBRE_1, "netatmo_sensor_humidity_percent", 52.0),
    (CHAMBRE_1, "netatmo_sensor_co2_ppm", 780.0),
    (CHAMBRE_1, "netatmo_sensor_temperature_min_today_celsius", 18.8),
    (CHAMBRE_1, "netatmo_sensor_temperature_max_today_celsius", 20.6),
    (CHAMBRE_1, "netatmo_sensor_temperature_trend", 0.0),
    # NHC: Home Coach, in the station families.
    (COACH_1, "netatmo_sensor_temperature_celsius", 20.7),
    (COACH_1, "netatmo_sensor_humidity_percent", 48.0),
    (COACH_1, "netatmo_sensor_co2_ppm", 650.0),
    (COACH_1, "netatmo_sensor_noise_db", 35.0),
    (COACH_1, "netatmo_sensor_pressure_mb", 1015.8),
    (COACH_1, "netatmo_sensor_absolute_pressure_pascals", 99500.0),
    (COACH_1, "netatmo_sensor_health_index", 1.0),
    (COACH_1, "netatmo_sensor_temperature_min_today_celsius", 19.6),
    (COACH_1, "netatmo_sensor_temperature_max_today_celsius", 21.4),
    (COACH_1, "netatmo_module_wifi_signal_strength", 60.0),
    (COACH_2, "netatmo_sensor_temperature_celsius", 22.1),
    (COACH_2, "netatmo_sensor_co2_ppm", 1210.0),
    (COACH_2, "netatmo_sensor_health_index", 2.0),
    # A favourite station, with the fewer fields Netatmo gives for it.
    (FAVORITE_MAIN, "netatmo_sensor_temperature_celsius", 22.0),
    (FAVORITE_MAIN, "netatmo_sensor_absolute_pressure_pascals", 97050.0),
    (FAVORITE_OUTDOOR, "netatmo_sensor_temperature_celsius", 9.6),
]


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoScrape]:
    with demo_exporter(tmp_path_factory.mktemp("exposition")) as exporter:
        status, body = exporter.get("/metrics")
        assert status == 200
        scrape = parse_scrape(body)
        status, scrape.openmetrics = exporter.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert status == 200
        yield scrape


@pytest.mark.parametrize(("module_id", "name", "expected"), EXPECTED,
                         ids=[f"{m}-{n}" for m, n, _ in EXPECTED])
def test_every_dashboard_field_in_its_base_unit(
    scrape: DemoScrape, module_id: str, name: str, expected: float
) -> None:
    assert scrape.of(name, module_id) == pytest.approx(expected)


def test_module_info_joins_ids_type_firmware_and_favourite(scrape: DemoScrape) -> None:
    infos = {info["module_id"]: info for info in scrape.series("netatmo_module_info")}

    assert infos[JARDIN] == {
        "module": 'Jardin "Süd" \\ Terrasse', "station": "Maison (Lyon)", "home": "Maison",
        "module_id": JARDIN, "station_id": SALON, "home_id": "5f1e3a2b4c5d6e7f8a9b0c1d",
        "type": "NAModule1", "firmware": "50", "favorite": "false",
    }
    assert infos[COACH_1]["type"] == "NHC"
    assert {infos[m]["favorite"] for m in (FAVORITE_MAIN, FAVORITE_OUTDOOR)} == {"true"}
    assert [i for i in infos.values() if i.get("favorite") == "true"] == [
        infos[FAVORITE_MAIN], infos[FAVORITE_OUTDOOR]]


def test_placeholder_firmware_of_a_never_paired_module_is_left_out(scrape: DemoScrape) -> None:
    infos = {info["module_id"]: info for info in scrape.series("netatmo_module_info")}

    assert infos[PLUIE]["firmware"] == ""  # Netatmo sends 255 for it
    assert infos[SALON]["firmware"] == "181"


@pytest.mark.parametrize(("module_id", "name", "before_measurement"), [
    (SALON, "netatmo_sensor_temperature_min_today_timestamp_seconds", 6 * 3600),
    (SALON, "netatmo_sensor_temperature_max_today_timestamp_seconds", 2 * 3600),
    (JARDIN, "netatmo_sensor_temperature_min_today_timestamp_seconds", 5 * 3600),
    (COACH_1, "netatmo_sensor_temperature_max_today_timestamp_seconds", 3600),
    (COACH_1, "netatmo_sensor_temperature_min_today_timestamp_seconds", 5 * 3600),
    (WIND, "netatmo_sensor_wind_max_today_timestamp_seconds", 4 * 3600),
])
def test_when_todays_extremes_happened_as_unix_times(
    scrape: DemoScrape, module_id: str, name: str, before_measurement: int
) -> None:
    measured = scrape.of("netatmo_sensor_updated", module_id)
    assert measured is not None
    assert scrape.of(name, module_id) == measured - before_measurement


def test_each_device_has_its_place_but_not_its_coordinates(scrape: DemoScrape) -> None:
    places = {place["station_id"]: place for place in
              scrape.series("netatmo_device_place_info")}

    assert places[SALON] == {
        "station": "Maison (Lyon)", "home": "Maison", "station_id": SALON, "type": "NAMain",
        "city": "Lyon", "country": "FR", "timezone": "Europe/Paris", "altitude": "173",
    }
    assert places[COACH_2]["city"] == "Lyon" and places[COACH_2]["type"] == "NHC"
    assert places[FAVORITE_MAIN]["city"] == "Genève"
    assert set(places) == {SALON, "70:ee:50:00:00:02", "70:ee:50:00:00:03", COACH_1, COACH_2,
                           FAVORITE_MAIN}
    assert "4.8357" not in scrape.body and "45.764" not in scrape.body


def test_info_families_are_info_in_openmetrics(scrape: DemoScrape) -> None:
    assert "# TYPE netatmo_module info\n" in scrape.openmetrics
    assert "# TYPE netatmo_exporter_build info\n" in scrape.openmetrics
    assert "# TYPE netatmo_api_requests counter\n" in scrape.openmetrics
    assert "_created" not in scrape.openmetrics


def test_stale_module_keeps_health_series_and_says_why(scrape: DemoScrape) -> None:
    assert scrape.of("netatmo_module_stale", GRENIER) == 1.0
    assert scrape.of("netatmo_module_reachable", GRENIER) == 1.0
    assert scrape.of("netatmo_module_paired", GRENIER) == 1.0
    assert scrape.of("netatmo_module_data_age_seconds", GRENIER) >= 10800  # type: ignore[operator]
    assert scrape.of("netatmo_module_battery_ratio", GRENIER) == 0.55
    assert scrape.of("netatmo_module_rf_signal_strength", GRENIER) == 84.0
    assert scrape.of("netatmo_sensor_temperature_celsius", GRENIER) is None
    assert scrape.of("netatmo_sensor_battery_percent", GRENIER) is None


def test_unreachable_module_keeps_health_series_and_says_why(scrape: DemoScrape) -> None:
    assert scrape.of("netatmo_module_reachable", CAVE) == 0.0
    assert scrape.of("netatmo_module_stale", CAVE) == 1.0
    assert scrape.of("netatmo_module_paired", CAVE) == 1.0
    assert scrape.of("netatmo_module_battery_ratio", CAVE) == 0.08
    assert scrape.of("netatmo_module_battery_volts", CAVE) == 4.4
    assert scrape.of("netatmo_module_rf_signal_strength", CAVE) == 90.0
    last_seen = scrape.of("netatmo_module_last_seen_timestamp_seconds", CAVE)
    assert last_seen is not None and 7000 < time.time() - last_seen < 86400
    assert scrape.of("netatmo_module_data_age_seconds", CAVE) is None  # it never measured
    assert scrape.of("netatmo_sensor_rf_signal_strength", CAVE) is None


def test_never_paired_module_shows_no_sentinel_values(scrape: DemoScrape) -> None:
    assert scrape.of("netatmo_module_paired", PLUIE) == 0.0
    assert scrape.of("netatmo_module_reachable", PLUIE) == 0.0
    assert scrape.of("netatmo_module_stale", PLUIE) == 1.0
    labels = scrape.module_labels(PLUIE)
    for (name, series), value in scrape.samples.items():
        if dict(series).items() >= labels.items():
            assert name in {"netatmo_module_paired", "netatmo_module_reachable",
                            "netatmo_module_stale", "netatmo_module_info"}, (name, value)


def test_fresh_modules_are_paired_and_not_stale(scrape: DemoScrape) -> None:
    for module_id in (SALON, JARDIN, WIND, RAIN, COACH_1, FAVORITE_OUTDOOR):
        assert scrape.of("netatmo_module_stale", module_id) == 0.0
        assert scrape.of("netatmo_module_paired", module_id) == 1.0
        age = scrape.of("netatmo_module_data_age_seconds", module_id)
        assert age is not None and 0 < age < 3600


def test_exporter_health_metrics(scrape: DemoScrape) -> None:
    assert scrape.value("netatmo_exporter_authorization_state", state="ok") == 1.0
    assert scrape.value("netatmo_exporter_authorization_state", state="invalid_grant") == 0.0
    assert scrape.value("netatmo_exporter_scope_missing", scope="read_homecoach") == 0.0
    assert scrape.value("netatmo_api_requests_total", endpoint="getstationsdata",
                        outcome="ok") == 1.0
    assert scrape.value("netatmo_api_requests_total", endpoint="getstationsdata",
                        outcome="rate_limited") == 0.0
    assert scrape.value("netatmo_refresh_errors_total", reason="rate_limited") == 0.0
    assert [s["version"] for s in scrape.series("netatmo_exporter_build_info")] != []
    assert not any(name.endswith("_created") for name, _ in scrape.samples)


def test_catalog_matches_the_scrape(scrape: DemoScrape) -> None:
    """docs/metrics.md is generated from METRICS: every family scraped is in it, with the
    same type and HELP text, and nothing in it is missing from a full scrape."""
    exposed = {_exposed_name(name, kind): (kind, scrape.helps[name])
               for name, kind in scrape.types.items()}
    text_format_kind = {"info": "gauge"}  # 0.0.4 has no info type; OpenMetrics has

    catalog: dict[str, tuple[str, str]] = {}
    # The history follower's families are there only with a receiver configured:
    # tests/integration/test_history_follower.py compares them with its scrape.
    for spec in (spec for spec in METRICS if spec not in HISTORY_METRICS):
        # A family shared by weather and heating modules carries the first entry's HELP.
        catalog.setdefault(spec.name, (text_format_kind.get(spec.kind, spec.kind), spec.text))

    assert exposed == catalog


def test_dashboard_and_alerts_query_only_scraped_metrics(scrape: DemoScrape) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"]
             for target in panel.get("targets", [])]
    exprs += [var["query"]["query"] for var in dashboard["templating"]["list"]
              if var["type"] == "query"]
    queried = {name for expr in exprs for name in re.findall(r"\bnetatmo_\w+", expr)}
    alerted = set(re.findall(r"\bnetatmo_\w+", RULES.read_text()))
    scraped_names = {name for name, _ in scrape.samples}

    assert len(exprs) > 30
    assert queried - scraped_names == set()
    assert alerted - scraped_names == set()


def test_an_endpoint_whose_scope_was_not_granted_is_skipped_and_reported_once(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    seed_token(cloud, token_path, scope=("read_station",))
    exporter = ExporterProcess(exporter_args(cloud, token_path, "--refresh-interval", "1s"),
                               tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)

    scrape = _scrape_after_refreshes(exporter, 3)

    assert scrape.value("netatmo_exporter_scope_missing", scope="read_homecoach") == 1.0
    assert scrape.value("netatmo_exporter_scope_missing", scope="read_station") == 0.0
    assert scrape.value("netatmo_exporter_authorization_state", state="missing_scope") == 1.0
    assert scrape.value("netatmo_api_requests_total", endpoint="gethomecoachsdata",
                        outcome="ok") == 0.0
    assert [s for s in scrape.series("netatmo_api_requests_total")
            if s["endpoint"] == "gethomecoachsdata" and s["outcome"] != "rate_limited"] == [
        {"endpoint": "gethomecoachsdata", "outcome": "ok"}]
    assert scrape.of("netatmo_sensor_temperature_celsius", SALON) == 21.5
    assert exporter.logs().count("event=endpoint_skipped") == 1
    assert "read_homecoach" in exporter.logs()


def _scrape_after_refreshes(exporter: ExporterProcess, refreshes: int) -> DemoScrape:
    def done(body: str) -> bool:
        return (parse_scrape(body).value("netatmo_api_requests_total",
                                         endpoint="getstationsdata", outcome="ok") or 0.0
                ) >= refreshes
    return parse_scrape(exporter.metrics_when(done, f"{refreshes} refreshes", 30.0))


def _exposed_name(family: str, kind: str) -> str:
    return f"{family}_total" if kind == "counter" else family
