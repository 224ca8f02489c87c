"""Prometheus collector of the weather data and the exporter's own health: renders the
scrape's one reading, never calls Netatmo. The families come from `weather_metrics`.

Exposition, for a fresh outdoor module (Go-compatible names first, then our own):

    netatmo_sensor_temperature_celsius{home="Home",module="Outdoor",station="Station"} 7.3
    netatmo_sensor_temperature_min_today_celsius{home="Home",module="Outdoor",...} 2.1
    netatmo_module_battery_volts{home="Home",module="Outdoor",station="Station"} 5.2
    netatmo_module_info{favorite="false",firmware="50",home="Home",home_id="5f..",...} 1.0
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from netatmo_exporter import __version__
from netatmo_exporter.adapters.metrics.weather_metrics import (
    BUDGET_METRIC,
    BUDGET_WAIT_METRICS,
    COUNTER_METRICS,
    DEVICE_METRICS,
    EXPORTER_METRICS,
    GO_MODULE_METRICS,
    HEALTH_METRICS,
    MODULE_INFO,
    READING_METRICS,
    WEATHER_METRICS,
)
from netatmo_exporter.domain.authorization.scopes import WEATHER_SCOPES
from netatmo_exporter.domain.authorization.tokens import AuthState, TokenStatus
from netatmo_exporter.domain.ports import Clock
from netatmo_exporter.domain.read_model import ReadService, ServiceReading
from netatmo_exporter.domain.weather.labels import ModuleLabels, label_modules
from netatmo_exporter.domain.weather.model import (
    NEVER_PAIRED_BATTERY_VP,
    NEVER_PAIRED_RF,
    Module,
    Station,
    data_age,
    is_stale,
)
from netatmo_exporter.domain.weather.refresher import WeatherState
from netatmo_exporter.domain.weather.schedule import DeviceCadence

AUTH_STATES = tuple(state.value for state in AuthState)


class WeatherCollector(Collector):
    """Every weather module and exporter metric, rendered from one reading of the service:
    the snapshot, status and cadences rendered belong to one fetch, the token's facts to
    the same moment."""

    def __init__(self, read: ReadService, clock: Clock, age_stale: float) -> None:
        self._read = read
        self._clock = clock
        self._age_stale = age_stale

    def describe(self) -> Iterator[Metric]:
        """The families by name, so that a scrape's `name[]` filter finds them."""
        others = {*COUNTER_METRICS.values(), BUDGET_METRIC,  # their own collectors'
                  *BUDGET_WAIT_METRICS.values()}
        return (spec.family() for spec in WEATHER_METRICS if spec not in others)

    def collect(self) -> Iterator[Metric]:
        return self.render(self._read())

    def render(self, reading: ServiceReading) -> Iterator[Metric]:
        now = self._clock.now()
        state = reading.weather
        snapshot = state.snapshot
        yield from self._exporter_metrics(state, reading.token)
        yield from self._module_metrics(() if snapshot is None else snapshot.stations,
                                        state.cadences, now)

    def _exporter_metrics(self, state: WeatherState, token: TokenStatus) -> Iterator[Metric]:
        snapshot, status = state.snapshot, state.status
        values = {
            "up": 1.0 if status.ok else 0.0,
            "interval": state.settings.interval,
            "last_refresh": status.attempted_at or 0.0,
            "duration": status.duration,
            "cache_updated": 0.0 if snapshot is None else snapshot.fetched_at,
            "next_refresh": status.next_call or 0.0,
            "token_valid": 1.0 if token.valid else 0.0,
            "token_expiry": (token.expires_at or 0.0) if token.valid else 0.0,
        }
        for key, value in values.items():
            family = EXPORTER_METRICS[key].gauge()
            family.add_metric([], value)
            yield family
        auth = _gauge("auth_state")
        for name in AUTH_STATES:
            auth.add_metric([name], 1.0 if token.state.value == name else 0.0)
        yield auth
        yield self._scope_missing(state, token.scope)
        build = EXPORTER_METRICS["build"].info()
        build.add_metric([__version__, platform.python_version()], {})
        yield build

    def _scope_missing(self, state: WeatherState,
                       granted: tuple[str, ...] | None) -> GaugeMetricFamily:
        skipped = () if state.snapshot is None else state.snapshot.skipped
        family = _gauge("scope_missing")
        for scope in WEATHER_SCOPES:
            if scope in state.settings.scopes:
                missing = scope in skipped or (granted is not None and scope not in granted)
                family.add_metric([scope], 1.0 if missing else 0.0)
        return family

    def _module_metrics(self, stations: Iterable[Station],
                        cadences: tuple[DeviceCadence, ...], now: float) -> Iterator[Metric]:
        readings = [(spec, spec.metric.gauge()) for spec in READING_METRICS]
        module = {key: spec.gauge() for key, spec in GO_MODULE_METRICS.items()}
        health = {key: spec.gauge() for key, spec in HEALTH_METRICS.items()}
        info = MODULE_INFO.info()
        place = DEVICE_METRICS["place"].info()
        period = DEVICE_METRICS["upload_period"].gauge()
        periods = {c.device_id: c.period for c in cadences}
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


def _gauge(key: str) -> GaugeMetricFamily:
    return EXPORTER_METRICS[key].gauge()


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
