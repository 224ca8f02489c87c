"""Prometheus collectors: render the latest snapshot, never call Netatmo.

Exposition, for a fresh outdoor module (Go-compatible names first, then our own):

    netatmo_sensor_temperature_celsius{home="Home",module="Outdoor",station="Station"} 7.3
    netatmo_sensor_temperature_min_celsius{home="Home",module="Outdoor",station="Station"} 2.1
    netatmo_module_battery_volts{home="Home",module="Outdoor",station="Station"} 5.2
    netatmo_module_info{firmware="50",home="Home",home_id="5f..",module="Outdoor",...} 1.0
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from netatmo_exporter import __version__
from netatmo_exporter.domain.authorization import AuthState, TokenManager
from netatmo_exporter.domain.labels import ModuleLabels, label_modules
from netatmo_exporter.domain.model import (
    NEVER_PAIRED_BATTERY_VP,
    NEVER_PAIRED_RF,
    Module,
    Readings,
    Station,
    data_age,
    is_stale,
)
from netatmo_exporter.domain.ports import Clock
from netatmo_exporter.domain.refresher import Refresher

LABELS = ("module", "station", "home")
INFO_LABELS = (*LABELS, "module_id", "station_id", "home_id", "type", "firmware", "favorite")

_KPH_TO_MPS = 1 / 3.6


@dataclass(frozen=True, slots=True)
class ReadingMetric:
    name: str
    help: str
    value: Callable[[Readings], float | None]


def _scaled(get: Callable[[Readings], float | None], factor: float) -> Callable[
        [Readings], float | None]:
    def scaled(readings: Readings) -> float | None:
        value = get(readings)
        return None if value is None else value * factor
    return scaled


# Readings of a fresh, reachable module. The first block are the Go exporter's names.
READING_METRICS = (
    ReadingMetric("netatmo_sensor_temperature_celsius", "Temperature measurement in celsius",
                  lambda r: r.temperature),
    ReadingMetric("netatmo_sensor_humidity_percent", "Relative humidity measurement in percent",
                  lambda r: r.humidity),
    ReadingMetric("netatmo_sensor_co2_ppm", "Carbondioxide measurement in parts per million",
                  lambda r: r.co2),
    ReadingMetric("netatmo_sensor_noise_db", "Noise measurement in decibels", lambda r: r.noise),
    ReadingMetric("netatmo_sensor_pressure_mb",
                  "Atmospheric pressure measurement in millibar, reduced to sea level",
                  lambda r: r.pressure),
    ReadingMetric("netatmo_sensor_wind_strength_kph",
                  "Wind strength in kilometers per hour, average of the last 5 minutes",
                  lambda r: r.wind_strength),
    ReadingMetric("netatmo_sensor_wind_direction_degrees",
                  "Wind direction in degrees, average of the last 5 minutes",
                  lambda r: r.wind_angle),
    ReadingMetric("netatmo_sensor_rain_amount_mm",
                  "Rain amount in millimeters of the last measurement (about 5 minutes)",
                  lambda r: r.rain),
    ReadingMetric("netatmo_sensor_absolute_pressure_pascals",
                  "Atmospheric pressure at the station's altitude (not reduced to sea level)",
                  _scaled(lambda r: r.absolute_pressure, 100.0)),
    ReadingMetric("netatmo_sensor_gust_strength_meters_per_second",
                  "Strongest gust of the last 5 minutes",
                  _scaled(lambda r: r.gust_strength, _KPH_TO_MPS)),
    ReadingMetric("netatmo_sensor_gust_direction_degrees",
                  "Direction of the strongest gust of the last 5 minutes",
                  lambda r: r.gust_angle),
    ReadingMetric("netatmo_sensor_wind_max_today_meters_per_second",
                  "Strongest wind measured today (station's local day)",
                  _scaled(lambda r: r.max_wind_strength, _KPH_TO_MPS)),
    ReadingMetric("netatmo_sensor_wind_max_today_direction_degrees",
                  "Direction of today's strongest wind", lambda r: r.max_wind_angle),
    ReadingMetric("netatmo_sensor_rain_last_hour_meters",
                  "Rain summed over the last hour, in meters (1 mm = 0.001)",
                  _scaled(lambda r: r.sum_rain_1, 0.001)),
    ReadingMetric("netatmo_sensor_rain_today_meters",
                  "Rain summed over today (station's local day), in meters (1 mm = 0.001)",
                  _scaled(lambda r: r.sum_rain_24, 0.001)),
    ReadingMetric("netatmo_sensor_temperature_min_today_celsius",
                  "Lowest temperature measured today", lambda r: r.min_temp),
    ReadingMetric("netatmo_sensor_temperature_max_today_celsius",
                  "Highest temperature measured today", lambda r: r.max_temp),
    ReadingMetric("netatmo_sensor_temperature_trend",
                  "Temperature trend: 1 up, 0 stable, -1 down",
                  lambda r: None if r.temp_trend is None else float(r.temp_trend)),
    ReadingMetric("netatmo_sensor_pressure_trend", "Pressure trend: 1 up, 0 stable, -1 down",
                  lambda r: None if r.pressure_trend is None else float(r.pressure_trend)),
    ReadingMetric("netatmo_sensor_health_index",
                  "Home Coach health index: 0 healthy, 1 fine, 2 fair, 3 poor, 4 unhealthy",
                  lambda r: r.health_idx),
)

AUTH_STATES = tuple(state.value for state in AuthState)


def _gauge(name: str, documentation: str, labels: Iterable[str] = LABELS) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def _wifi_help() -> str:
    return "Wifi signal strength, lower is better (86: bad, 71: avg, 56: good)"


def _rf_help() -> str:
    return "Radio signal strength, lower is better (90: lowest, 60: highest)"


class NetatmoCollector(Collector):
    """Every module and exporter metric, rendered from the refresher's latest snapshot."""

    def __init__(self, refresher: Refresher, tokens: TokenManager, clock: Clock,
                 age_stale: float) -> None:
        self._refresher = refresher
        self._tokens = tokens
        self._clock = clock
        self._age_stale = age_stale

    def collect(self) -> Iterator[Metric]:
        now = self._clock.now()
        yield from self._exporter_metrics(now)
        snapshot = self._refresher.snapshot
        yield from self._module_metrics(() if snapshot is None else snapshot.stations, now)

    def _exporter_metrics(self, now: float) -> Iterator[Metric]:
        status = self._refresher.status
        snapshot = self._refresher.snapshot
        token = self._tokens.status()
        simple = (
            ("netatmo_up", "1 if the last refresh from Netatmo succeeded, else 0",
             1.0 if status.ok else 0.0),
            ("netatmo_refresh_interval_seconds",
             "Configured refresh interval in seconds; data is cached between refreshes",
             self._refresher.settings.interval),
            ("netatmo_last_refresh_time",
             "Unix time of the last refresh attempt, successful or not",
             status.attempted_at or 0.0),
            ("netatmo_last_refresh_duration_seconds",
             "How long the last refresh took, even if it failed", status.duration),
            ("netatmo_cache_updated_time", "Unix time of the cached data",
             0.0 if snapshot is None else snapshot.fetched_at),
            ("netatmo_exporter_token_valid", "1 if there is a valid access token, else 0",
             1.0 if token.valid else 0.0),
            ("netatmo_exporter_token_expiry_time",
             "Unix time the access token expires; 0 if there is no valid token",
             (token.expires_at or 0.0) if token.valid else 0.0),
        )
        for name, documentation, value in simple:
            yield GaugeMetricFamily(name, documentation, value=value)
        auth = _gauge("netatmo_exporter_authorization_state",
                      "1 for the current authorization state, 0 for the others", ("state",))
        for state in AUTH_STATES:
            auth.add_metric([state], 1.0 if token.state.value == state else 0.0)
        yield auth
        build = _gauge("netatmo_exporter_build_info", "Version of the exporter",
                       ("version", "python_version"))
        build.add_metric([__version__, platform.python_version()], 1.0)
        yield build

    def _module_metrics(self, stations: Iterable[Station], now: float) -> Iterator[Metric]:
        readings = {spec.name: _gauge(spec.name, spec.help) for spec in READING_METRICS}
        updated = _gauge("netatmo_sensor_updated", "Timestamp of last update")
        battery = _gauge("netatmo_sensor_battery_percent", "Battery remaining life (10: low)")
        wifi = _gauge("netatmo_sensor_wifi_signal_strength", _wifi_help())
        rf = _gauge("netatmo_sensor_rf_signal_strength", _rf_help())
        health = {
            "reachable": _gauge("netatmo_module_reachable",
                                "1 if Netatmo can reach the module, else 0"),
            "battery_percent": _gauge("netatmo_module_battery_percent",
                                      "Battery remaining life, kept while the module is stale"),
            "battery_volts": _gauge("netatmo_module_battery_volts", "Battery voltage in volts"),
            "wifi": _gauge("netatmo_module_wifi_signal_strength",
                           _wifi_help() + ", kept while the module is stale"),
            "rf": _gauge("netatmo_module_rf_signal_strength",
                         _rf_help() + ", kept while the module is stale"),
            "last_seen": _gauge("netatmo_module_last_seen_timestamp_seconds",
                                "Unix time Netatmo last heard from the module"),
            "measured": _gauge("netatmo_module_last_measurement_timestamp_seconds",
                               "Unix time of the module's last measurement"),
            "age": _gauge("netatmo_module_data_age_seconds",
                          "Age of the module's last measurement at scrape time"),
            "stale": _gauge("netatmo_module_stale",
                            "1 if the module's readings are too old (or missing) to export"),
        }
        info = _gauge("netatmo_module_info", "Module metadata, for joins", INFO_LABELS)
        for station, module, labels in label_modules(stations):
            values = [labels.module, labels.station, labels.home]
            info.add_metric(_info_labels(station, module, labels), 1.0)
            stale = is_stale(module, now, self._age_stale) or module.reachable is False
            self._add_health(health, module, values, now, stale)
            if stale or module.readings is None:
                continue
            assert module.measured_at is not None
            updated.add_metric(values, module.measured_at)
            for spec in READING_METRICS:
                value = spec.value(module.readings)
                if value is not None:
                    readings[spec.name].add_metric(values, value)
            _add_if(battery, values, _battery_percent(module))
            _add_if(wifi, values, module.wifi_status)
            _add_if(rf, values, _rf(module))
        yield updated
        yield from readings.values()
        yield from (battery, wifi, rf)
        yield from health.values()
        yield info

    @staticmethod
    def _add_health(health: dict[str, GaugeMetricFamily], module: Module, values: list[str],
                    now: float, stale: bool) -> None:
        if module.reachable is not None:
            health["reachable"].add_metric(values, 1.0 if module.reachable else 0.0)
        _add_if(health["battery_percent"], values, _battery_percent(module))
        volts = module.battery_vp
        if volts is not None and volts != NEVER_PAIRED_BATTERY_VP and volts > 0:
            health["battery_volts"].add_metric(values, volts / 1000.0)
        _add_if(health["wifi"], values, module.wifi_status)
        _add_if(health["rf"], values, _rf(module))
        if module.last_seen:
            health["last_seen"].add_metric(values, module.last_seen)
        if module.measured_at is not None:
            health["measured"].add_metric(values, module.measured_at)
        _add_if(health["age"], values, data_age(module, now))
        health["stale"].add_metric(values, 1.0 if stale else 0.0)


class ApiCounterCollector(Collector):
    """Counters of Netatmo requests and refresh errors, built per scrape from plain counts so
    that no `_created` series appear whatever the prometheus_client version."""

    def __init__(self, request_counts: Callable[[], dict[tuple[str, str], int]],
                 refresher: Refresher) -> None:
        self._request_counts = request_counts
        self._refresher = refresher

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "netatmo_api_requests", "Requests sent to the Netatmo API, by endpoint and outcome",
            labels=["endpoint", "outcome"])
        for (endpoint, outcome), count in sorted(self._request_counts().items()):
            requests.add_metric([endpoint, outcome], float(count))
        yield requests
        errors = CounterMetricFamily(
            "netatmo_refresh_errors", "Failed refreshes, by reason", labels=["reason"])
        for reason, count in sorted(dict(self._refresher.error_counts).items()):
            errors.add_metric([reason], float(count))
        yield errors


def _info_labels(station: Station, module: Module, labels: ModuleLabels) -> list[str]:
    return [
        labels.module, labels.station, labels.home, module.id, station.id,
        station.home_id or "", module.type,
        "" if module.firmware is None else str(module.firmware),
        "true" if station.favorite else "false",
    ]


def _battery_percent(module: Module) -> float | None:
    if module.battery_vp == NEVER_PAIRED_BATTERY_VP:
        return None
    return module.battery_percent


def _rf(module: Module) -> float | None:
    return None if module.rf_status == NEVER_PAIRED_RF else module.rf_status


def _add_if(family: GaugeMetricFamily, values: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(values, value)
