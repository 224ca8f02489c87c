"""Prometheus collectors: render the latest snapshot, never call Netatmo.

Exposition, for a fresh outdoor module (Go-compatible names first, then our own):

    netatmo_sensor_temperature_celsius{home="Home",module="Outdoor",station="Station"} 7.3
    netatmo_sensor_temperature_min_today_celsius{home="Home",module="Outdoor",...} 2.1
    netatmo_module_battery_volts{home="Home",module="Outdoor",station="Station"} 5.2
    netatmo_module_info{favorite="false",firmware="50",home="Home",home_id="5f..",...} 1.0

`METRICS` lists every family with its type, labels, unit and meaning; the collectors build
their families from it and `python -m netatmo_exporter.adapters.collector --markdown`
prints it as the table in docs/metrics.md, so code and docs cannot drift.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from netatmo_exporter import __version__
from netatmo_exporter.adapters.energy_collector import ENERGY_METRICS
from netatmo_exporter.adapters.metric_spec import LABELS, MetricSpec
from netatmo_exporter.adapters.metric_spec import metric as _metric
from netatmo_exporter.domain.authorization import AuthState, TokenManager
from netatmo_exporter.domain.labels import ModuleLabels, label_modules
from netatmo_exporter.domain.model import (
    NEVER_PAIRED_BATTERY_VP,
    NEVER_PAIRED_RF,
    Module,
    Readings,
    Snapshot,
    Station,
    data_age,
    is_stale,
)
from netatmo_exporter.domain.ports import Clock
from netatmo_exporter.domain.refresher import HOMECOACH_SCOPE, STATIONS_SCOPE, Refresher

INFO_LABELS = (*LABELS, "module_id", "station_id", "home_id", "type", "firmware", "favorite")
DEVICE_LABELS = ("station", "home")
PLACE_LABELS = (*DEVICE_LABELS, "station_id", "type", "city", "country", "timezone",
                "altitude")
AUTH_STATES = tuple(state.value for state in AuthState)
DATA_SCOPES = (STATIONS_SCOPE, HOMECOACH_SCOPE)

_KPH_TO_MPS = 1 / 3.6
_CACHED = "Cached; refreshed from Netatmo every refresh interval."
_WIFI = "Wifi signal quality, lower is better (86: bad, 71: average, 56: good)"
_RF = "Radio signal quality to the base station, lower is better (90: low, 60: full)"
_KEPT = "Kept while the module is stale or unreachable."

@dataclass(frozen=True, slots=True)
class ReadingSpec:
    """A `dashboard_data` field exported while the module is fresh, in the metric's unit."""

    metric: MetricSpec
    value: Callable[[Readings], float | None]


def _scaled(get: Callable[[Readings], float | None], factor: float
            ) -> Callable[[Readings], float | None]:
    def scaled(readings: Readings) -> float | None:
        value = get(readings)
        return None if value is None else value * factor
    return scaled


def _trend(get: Callable[[Readings], int | None]) -> Callable[[Readings], float | None]:
    def trend(readings: Readings) -> float | None:
        value = get(readings)
        return None if value is None else float(value)
    return trend


def _reading(name: str, unit: str, text: str, value: Callable[[Readings], float | None],
             go: bool = False) -> ReadingSpec:
    return ReadingSpec(_metric(name, unit, text, go=go), value)


NO_LABELS: tuple[str, ...] = ()

EXPORTER_METRICS = {
    "up": _metric("netatmo_up", "", "1 if the last refresh from Netatmo succeeded, else 0",
                  NO_LABELS, go=True),
    "interval": _metric("netatmo_refresh_interval_seconds", "seconds",
                        "Configured refresh interval; data is cached between refreshes",
                        NO_LABELS, go=True),
    "last_refresh": _metric("netatmo_last_refresh_time", "Unix seconds",
                            "Unix time of the last refresh attempt, successful or not",
                            NO_LABELS, go=True),
    "duration": _metric("netatmo_last_refresh_duration_seconds", "seconds",
                        "How long the last refresh took, even if it failed", NO_LABELS, go=True),
    "cache_updated": _metric("netatmo_cache_updated_time", "Unix seconds",
                             "Unix time of the last successful refresh (the cached data)",
                             NO_LABELS, go=True),
    "next_refresh": _metric("netatmo_next_refresh_timestamp_seconds", "Unix seconds",
                            "Unix time the next data call is planned for (--refresh-mode "
                            "aligned: just after the next station upload should be visible)",
                            NO_LABELS),
    "token_valid": _metric("netatmo_exporter_token_valid", "",
                           "1 if there is a valid access token, else 0", NO_LABELS, go=True),
    "token_expiry": _metric("netatmo_exporter_token_expiry_time", "Unix seconds",
                            "Unix time the access token expires (it is renewed before); "
                            "0 if there is no valid token", NO_LABELS, go=True),
    "auth_state": _metric("netatmo_exporter_authorization_state", "",
                          "1 for the current authorization state, 0 for the others; "
                          "anything but ok needs the operator", ("state",)),
    "scope_missing": _metric("netatmo_exporter_scope_missing", "",
                             "1 if a data scope asked for with --scope was not granted, so "
                             "its endpoint is skipped until the user authorizes again",
                             ("scope",)),
    "build": _metric("netatmo_exporter_build_info", "",
                     "Version of the exporter and of the Python running it",
                     ("version", "python_version"), "info"),
}

COUNTER_METRICS = {
    "requests": _metric("netatmo_api_requests_total", "requests",
                        "Requests sent to the Netatmo API, by endpoint and outcome "
                        "(ok, or the error reason such as rate_limited)",
                        ("endpoint", "outcome"), "counter"),
    "errors": _metric("netatmo_refresh_errors_total", "refreshes",
                      "Failed refreshes, by reason", ("reason",), "counter"),
}

# Readings of a fresh, reachable module. The first block are the Go exporter's names.
READING_METRICS = (
    _reading("netatmo_sensor_temperature_celsius", "°C", "Temperature measurement in celsius",
             lambda r: r.temperature, go=True),
    _reading("netatmo_sensor_humidity_percent", "%", "Relative humidity measurement in percent",
             lambda r: r.humidity, go=True),
    _reading("netatmo_sensor_co2_ppm", "ppm", "Carbon dioxide measurement in parts per million",
             lambda r: r.co2, go=True),
    _reading("netatmo_sensor_noise_db", "dB", "Noise measurement in decibels",
             lambda r: r.noise, go=True),
    _reading("netatmo_sensor_pressure_mb", "mbar (hPa)",
             "Atmospheric pressure in millibar, reduced to sea level",
             lambda r: r.pressure, go=True),
    _reading("netatmo_sensor_wind_strength_kph", "km/h",
             "Wind strength in kilometers per hour, average of the last 5 minutes",
             lambda r: r.wind_strength, go=True),
    _reading("netatmo_sensor_wind_direction_degrees", "degrees",
             "Wind direction in degrees, average of the last 5 minutes",
             lambda r: r.wind_angle, go=True),
    _reading("netatmo_sensor_rain_amount_mm", "mm",
             "Rain in millimeters of the last measurement only (about 5 minutes), not a sum",
             lambda r: r.rain, go=True),
    _reading("netatmo_sensor_absolute_pressure_pascals", "Pa",
             "Atmospheric pressure at the station's altitude, not reduced to sea level",
             _scaled(lambda r: r.absolute_pressure, 100.0)),
    _reading("netatmo_sensor_gust_strength_meters_per_second", "m/s",
             "Strongest gust of the last 5 minutes",
             _scaled(lambda r: r.gust_strength, _KPH_TO_MPS)),
    _reading("netatmo_sensor_gust_direction_degrees", "degrees",
             "Direction of the strongest gust of the last 5 minutes", lambda r: r.gust_angle),
    _reading("netatmo_sensor_wind_max_today_meters_per_second", "m/s",
             "Strongest wind measured today (station's local day)",
             _scaled(lambda r: r.max_wind_strength, _KPH_TO_MPS)),
    _reading("netatmo_sensor_wind_max_today_direction_degrees", "degrees",
             "Direction of today's strongest wind", lambda r: r.max_wind_angle),
    _reading("netatmo_sensor_rain_last_hour_meters", "m",
             "Rain summed over the last hour, in meters (1 mm = 0.001)",
             _scaled(lambda r: r.sum_rain_1, 0.001)),
    _reading("netatmo_sensor_rain_today_meters", "m",
             "Rain summed over today (station's local day), in meters (1 mm = 0.001)",
             _scaled(lambda r: r.sum_rain_24, 0.001)),
    _reading("netatmo_sensor_temperature_min_today_celsius", "°C",
             "Lowest temperature measured today", lambda r: r.min_temp),
    _reading("netatmo_sensor_temperature_max_today_celsius", "°C",
             "Highest temperature measured today", lambda r: r.max_temp),
    _reading("netatmo_sensor_temperature_min_today_timestamp_seconds", "Unix seconds",
             "When today's lowest temperature was measured", lambda r: r.date_min_temp),
    _reading("netatmo_sensor_temperature_max_today_timestamp_seconds", "Unix seconds",
             "When today's highest temperature was measured", lambda r: r.date_max_temp),
    _reading("netatmo_sensor_wind_max_today_timestamp_seconds", "Unix seconds",
             "When today's strongest wind was measured", lambda r: r.date_max_wind_strength),
    _reading("netatmo_sensor_temperature_trend", "",
             "Temperature trend: 1 up, 0 stable, -1 down", _trend(lambda r: r.temp_trend)),
    _reading("netatmo_sensor_pressure_trend", "", "Pressure trend: 1 up, 0 stable, -1 down",
             _trend(lambda r: r.pressure_trend)),
    _reading("netatmo_sensor_health_index", "",
             "Home Coach health index: 0 healthy, 1 fine, 2 fair, 3 poor, 4 unhealthy",
             lambda r: r.health_idx),
)

# Go-compatible per-module series beside the readings; like them, dropped when stale.
MODULE_METRICS = {
    "updated": _metric("netatmo_sensor_updated", "Unix seconds",
                       "Unix time of the module's last measurement", go=True),
    "battery": _metric("netatmo_sensor_battery_percent", "%",
                       "Battery remaining life in percent (10: low)", go=True),
    "wifi": _metric("netatmo_sensor_wifi_signal_strength", "", _WIFI, go=True),
    "rf": _metric("netatmo_sensor_rf_signal_strength", "", _RF, go=True),
}

# Health of every module, fresh or not, so an alert can say why readings stopped.
HEALTH_METRICS = {
    "reachable": _metric("netatmo_module_reachable", "",
                         f"1 if Netatmo can reach the module, else 0. {_CACHED}"),
    "paired": _metric("netatmo_module_paired", "",
                      "0 if the module was never paired with its station (Netatmo sends "
                      "placeholders: rf 255, battery 65535 mV, last seen 0), else 1"),
    "stale": _metric("netatmo_module_stale", "",
                     "1 if the module's readings are missing or older than --age-stale (or "
                     "it is unreachable), so its netatmo_sensor_* readings are not exported"),
    "battery_ratio": _metric("netatmo_module_battery_ratio", "ratio",
                             f"Battery remaining life, 0 to 1. {_KEPT}"),
    "battery_volts": _metric("netatmo_module_battery_volts", "V",
                             f"Battery voltage. {_KEPT}"),
    "wifi": _metric("netatmo_module_wifi_signal_strength", "", f"{_WIFI}. {_KEPT}"),
    "rf": _metric("netatmo_module_rf_signal_strength", "", f"{_RF}. {_KEPT}"),
    "last_seen": _metric("netatmo_module_last_seen_timestamp_seconds", "Unix seconds",
                         "Unix time Netatmo last heard from the module (last_seen; "
                         "last_status_store for a base station or Home Coach)"),
    "measured": _metric("netatmo_module_last_measurement_timestamp_seconds", "Unix seconds",
                        "Unix time of the module's last measurement (time_utc)"),
    "age": _metric("netatmo_module_data_age_seconds", "seconds",
                   f"Age of the module's last measurement at scrape time. {_CACHED}"),
}

MODULE_INFO = _metric("netatmo_module_info", "",
                      "Module metadata for joins; favorite=\"true\" for a starred station of "
                      "another user (--favorites)", INFO_LABELS, "info")

DEVICE_METRICS = {
    "place": _metric("netatmo_device_place_info", "",
                     "Where a station or Home Coach is, as its owner set it (no coordinates)",
                     PLACE_LABELS, "info"),
    "upload_period": _metric("netatmo_device_upload_period_seconds", "seconds",
                             "How often the device uploads to Netatmo, as learned from "
                             "last_status_store (--refresh-mode aligned, once known)",
                             DEVICE_LABELS),
}

METRICS: tuple[MetricSpec, ...] = (
    *EXPORTER_METRICS.values(),
    *COUNTER_METRICS.values(),
    *MODULE_METRICS.values(),
    *(reading.metric for reading in READING_METRICS),
    *HEALTH_METRICS.values(),
    MODULE_INFO,
    *DEVICE_METRICS.values(),
    *ENERGY_METRICS,
)


class NetatmoCollector(Collector):
    """Every module and exporter metric, rendered from the refresher's latest snapshot."""

    def __init__(self, refresher: Refresher, tokens: TokenManager, clock: Clock,
                 age_stale: float) -> None:
        self._refresher = refresher
        self._tokens = tokens
        self._clock = clock
        self._age_stale = age_stale

    def describe(self) -> Iterator[Metric]:
        """The families by name, so that a scrape's `name[]` filter finds them."""
        counters = set(COUNTER_METRICS.values())
        return (spec.family() for spec in METRICS if spec not in counters)

    def collect(self) -> Iterator[Metric]:
        now = self._clock.now()
        snapshot = self._refresher.snapshot
        yield from self._exporter_metrics(snapshot)
        yield from self._module_metrics(() if snapshot is None else snapshot.stations, now)

    def _exporter_metrics(self, snapshot: Snapshot | None) -> Iterator[Metric]:
        status = self._refresher.status
        token = self._tokens.status()
        values = {
            "up": 1.0 if status.ok else 0.0,
            "interval": self._refresher.settings.interval,
            "last_refresh": status.attempted_at or 0.0,
            "duration": status.duration,
            "cache_updated": 0.0 if snapshot is None else snapshot.fetched_at,
            "next_refresh": status.next_call or 0.0,
            "token_valid": 1.0 if token.valid else 0.0,
            "token_expiry": (token.expires_at or 0.0) if token.valid else 0.0,
        }
        for key, value in values.items():
            family = EXPORTER_METRICS[key].family()
            assert isinstance(family, GaugeMetricFamily)
            family.add_metric([], value)
            yield family
        auth = _gauge("auth_state")
        for state in AUTH_STATES:
            auth.add_metric([state], 1.0 if token.state.value == state else 0.0)
        yield auth
        yield self._scope_missing(snapshot, token.scope)
        build = EXPORTER_METRICS["build"].family()
        assert isinstance(build, InfoMetricFamily)
        build.add_metric([__version__, platform.python_version()], {})
        yield build

    def _scope_missing(self, snapshot: Snapshot | None,
                       granted: tuple[str, ...] | None) -> GaugeMetricFamily:
        skipped = () if snapshot is None else snapshot.skipped
        family = _gauge("scope_missing")
        for scope in DATA_SCOPES:
            if scope in self._refresher.settings.scopes:
                missing = scope in skipped or (granted is not None and scope not in granted)
                family.add_metric([scope], 1.0 if missing else 0.0)
        return family

    def _module_metrics(self, stations: Iterable[Station], now: float) -> Iterator[Metric]:
        readings = [(spec, _family(spec.metric)) for spec in READING_METRICS]
        module = {key: _family(spec) for key, spec in MODULE_METRICS.items()}
        health = {key: _family(spec) for key, spec in HEALTH_METRICS.items()}
        info = MODULE_INFO.family()
        assert isinstance(info, InfoMetricFamily)
        place = DEVICE_METRICS["place"].family()
        assert isinstance(place, InfoMetricFamily)
        period = _family(DEVICE_METRICS["upload_period"])
        periods = {c.device_id: c.period for c in self._refresher.cadences}
        for station, mod, labels in label_modules(stations):
            values = [labels.module, labels.station, labels.home]
            info.add_metric(_info_labels(station, mod, labels), {})
            if mod is station.main:
                place.add_metric(_place_labels(station, labels), {})
                _add_if(period, [labels.station, labels.home], periods.get(station.id))
            stale = is_stale(mod, now, self._age_stale) or mod.reachable is False
            _add_health(health, mod, values, now, stale)
            if stale or mod.readings is None:
                continue
            assert mod.measured_at is not None
            module["updated"].add_metric(values, mod.measured_at)
            for spec, family in readings:
                _add_if(family, values, spec.value(mod.readings))
            _add_if(module["battery"], values, _battery_percent(mod))
            _add_if(module["wifi"], values, mod.wifi_status)
            _add_if(module["rf"], values, _rf(mod))
        yield module.pop("updated")
        yield from (family for _, family in readings)
        yield from module.values()
        yield from health.values()
        yield info
        yield place
        yield period


# Series exported at 0 before their first increment, so that `increase()` in an alert sees
# the first one too (a counter series born at 1 has no earlier sample to compare with).
ALERTED_REQUESTS = tuple(
    (endpoint, outcome)
    for endpoint in ("token", "getstationsdata", "gethomecoachsdata")
    for outcome in ("ok", "rate_limited")
)
ALERTED_REFRESH_ERRORS = ("rate_limited",)


class ApiCounterCollector(Collector):
    """Counters of Netatmo requests and refresh errors, built per scrape from plain counts so
    that no `_created` series appear whatever the prometheus_client version."""

    def __init__(self, request_counts: Callable[[], dict[tuple[str, str], int]],
                 refresher: Refresher,
                 alerted: tuple[tuple[str, str], ...] = ALERTED_REQUESTS) -> None:
        self._request_counts = request_counts
        self._refresher = refresher
        self._alerted = alerted

    def describe(self) -> Iterator[Metric]:
        return (spec.family() for spec in COUNTER_METRICS.values())

    def collect(self) -> Iterator[Metric]:
        requests = COUNTER_METRICS["requests"].family()
        assert isinstance(requests, CounterMetricFamily)
        counts = {**dict.fromkeys(self._alerted, 0), **self._request_counts()}
        for (endpoint, outcome), count in sorted(counts.items()):
            requests.add_metric([endpoint, outcome], float(count))
        yield requests
        errors = COUNTER_METRICS["errors"].family()
        assert isinstance(errors, CounterMetricFamily)
        reasons = {**dict.fromkeys(ALERTED_REFRESH_ERRORS, 0), **self._refresher.error_counts}
        for reason, count in sorted(reasons.items()):
            errors.add_metric([reason], float(count))
        yield errors


def _family(spec: MetricSpec) -> GaugeMetricFamily:
    family = spec.family()
    assert isinstance(family, GaugeMetricFamily)
    return family


def _gauge(key: str) -> GaugeMetricFamily:
    return _family(EXPORTER_METRICS[key])


def _add_health(gauges: dict[str, GaugeMetricFamily], module: Module, values: list[str],
                now: float, stale: bool) -> None:
    if module.reachable is not None:
        gauges["reachable"].add_metric(values, 1.0 if module.reachable else 0.0)
    gauges["paired"].add_metric(values, 0.0 if module.never_paired else 1.0)
    gauges["stale"].add_metric(values, 1.0 if stale else 0.0)
    percent = _battery_percent(module)
    _add_if(gauges["battery_ratio"], values, None if percent is None else percent / 100.0)
    volts = module.battery_vp
    if volts is not None and volts != NEVER_PAIRED_BATTERY_VP and volts > 0:
        gauges["battery_volts"].add_metric(values, volts / 1000.0)
    _add_if(gauges["wifi"], values, module.wifi_status)
    _add_if(gauges["rf"], values, _rf(module))
    if module.last_seen:
        gauges["last_seen"].add_metric(values, module.last_seen)
    _add_if(gauges["measured"], values, module.measured_at)
    _add_if(gauges["age"], values, data_age(module, now))


def _info_labels(station: Station, module: Module, labels: ModuleLabels) -> list[str]:
    return [
        labels.module, labels.station, labels.home, module.id, station.id,
        station.home_id or "", module.type,
        "" if module.known_firmware is None else str(module.known_firmware),
        "true" if station.favorite else "false",
    ]


def _place_labels(station: Station, labels: ModuleLabels) -> list[str]:
    where = station.place
    altitude = "" if where.altitude is None else f"{where.altitude:g}"
    return [labels.station, labels.home, station.id, station.main.type, where.city or "",
            where.country or "", where.timezone or "", altitude]


def _battery_percent(module: Module) -> float | None:
    if module.battery_vp == NEVER_PAIRED_BATTERY_VP:
        return None
    return module.battery_percent


def _rf(module: Module) -> float | None:
    return None if module.rf_status == NEVER_PAIRED_RF else module.rf_status


def _add_if(family: GaugeMetricFamily, values: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(values, value)


def markdown_table() -> str:
    """The metric table of docs/metrics.md."""
    rows = ["| name | type | labels | unit | meaning | compatibility |",
            "|---|---|---|---|---|---|"]
    for spec in METRICS:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "none"
        meaning = spec.text.replace("|", "\\|")
        origin = "Go-compatible" if spec.go else "new"
        rows.append(f"| `{spec.name}` | {spec.kind} | {labels} | {spec.unit or '-'} | "
                    f"{meaning} | {origin} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["--markdown"]:
        print("usage: python -m netatmo_exporter.adapters.collector --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
