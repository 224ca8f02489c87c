"""The weather metric catalog: every family the weather collectors expose, with its type,
labels, unit and meaning. The collectors build their families from it and
`python -m netatmo_exporter.adapters.metrics.docs --markdown` prints it (with the Energy
catalog) as the table in docs/metrics.md, so code and docs cannot drift."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netatmo_exporter.adapters.metrics.spec import LABELS, MetricSpec
from netatmo_exporter.adapters.metrics.spec import metric as _metric
from netatmo_exporter.domain.weather.model import Readings

INFO_LABELS = (*LABELS, "module_id", "station_id", "home_id", "type", "firmware", "favorite")
DEVICE_LABELS = ("station", "home")
PLACE_LABELS = (*DEVICE_LABELS, "station_id", "type", "city", "country", "timezone",
                "altitude")

_KPH_TO_MPS = 1 / 3.6
_CACHED = ("Cached; refreshed from Netatmo after each upload of the device (--refresh-mode "
           "aligned) or every refresh interval (fixed).")
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

SCOPE_MISSING = _metric("netatmo_exporter_scope_missing", "",
                        "1 if a scope asked for with --scope was not granted, so its "
                        "endpoints are skipped until the user authorizes again", ("scope",))

EXPORTER_METRICS = {
    "up": _metric("netatmo_up", "", "1 if the last refresh from Netatmo succeeded, else 0",
                  NO_LABELS, go=True),
    "interval": _metric("netatmo_refresh_interval_seconds", "seconds",
                        "Configured refresh interval: the fallback of --refresh-mode aligned, "
                        "the period of fixed; data is cached between refreshes",
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
    "scope_missing": SCOPE_MISSING,
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

BUDGET_METRIC = _metric(
    "netatmo_exporter_api_budget_calls", "calls",
    "Calls to Netatmo's data API in the last window (10s: of 50 allowed, 1h: of 500), by "
    "caller: weather, energy, and a backfill run beside the service",
    ("caller", "window"))
BUDGET_WAIT_METRICS = {
    "waiting": _metric(
        "netatmo_exporter_api_budget_waiting", "",
        "1 while the service's poller (weather, energy) waits for room in Netatmo's call "
        "budget, as when a backfill beside the service takes much of the hour",
        ("caller",)),
    "waited": _metric(
        "netatmo_exporter_api_budget_wait_seconds_total", "seconds",
        "Time the service's pollers spent waiting for room in Netatmo's call budget",
        ("caller",), "counter"),
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
GO_MODULE_METRICS = {
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

WEATHER_METRICS: tuple[MetricSpec, ...] = (
    *EXPORTER_METRICS.values(),
    *COUNTER_METRICS.values(),
    BUDGET_METRIC,
    *BUDGET_WAIT_METRICS.values(),
    *GO_MODULE_METRICS.values(),
    *(reading.metric for reading in READING_METRICS),
    *HEALTH_METRICS.values(),
    MODULE_INFO,
    *DEVICE_METRICS.values(),
)
