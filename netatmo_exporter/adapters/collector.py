"""Prometheus collectors of the weather data and the exporter's own health: render the
latest state, never call Netatmo. The families come from `weather_metrics`.

Exposition, for a fresh outdoor module (Go-compatible names first, then our own):

    netatmo_sensor_temperature_celsius{home="Home",module="Outdoor",station="Station"} 7.3
    netatmo_sensor_temperature_min_today_celsius{home="Home",module="Outdoor",...} 2.1
    netatmo_module_battery_volts{home="Home",module="Outdoor",station="Station"} 5.2
    netatmo_module_info{favorite="false",firmware="50",home="Home",home_id="5f..",...} 1.0
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from netatmo_exporter import __version__
from netatmo_exporter.adapters.metric_spec import MetricSpec
from netatmo_exporter.adapters.weather_metrics import (
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
from netatmo_exporter.domain.authorization import AuthState, TokenManager
from netatmo_exporter.domain.call_policy import BudgetUse, BudgetWaitState
from netatmo_exporter.domain.labels import ModuleLabels, label_modules
from netatmo_exporter.domain.model import (
    NEVER_PAIRED_BATTERY_VP,
    NEVER_PAIRED_RF,
    Module,
    Station,
    data_age,
    is_stale,
)
from netatmo_exporter.domain.ports import Clock
from netatmo_exporter.domain.refresher import WeatherState
from netatmo_exporter.domain.schedule import DeviceCadence
from netatmo_exporter.domain.scopes import WEATHER_SCOPES

AUTH_STATES = tuple(state.value for state in AuthState)


class NetatmoCollector(Collector):
    """Every module and exporter metric, rendered from the refresher's latest state, read
    once per scrape: the snapshot, status and cadences rendered belong to one fetch."""

    def __init__(self, weather: Callable[[], WeatherState], tokens: TokenManager,
                 clock: Clock, age_stale: float) -> None:
        self._weather = weather
        self._tokens = tokens
        self._clock = clock
        self._age_stale = age_stale

    def describe(self) -> Iterator[Metric]:
        """The families by name, so that a scrape's `name[]` filter finds them."""
        others = {*COUNTER_METRICS.values(), BUDGET_METRIC,  # their own collectors'
                  *BUDGET_WAIT_METRICS.values()}
        return (spec.family() for spec in WEATHER_METRICS if spec not in others)

    def collect(self) -> Iterator[Metric]:
        now = self._clock.now()
        state = self._weather()
        snapshot = state.snapshot
        yield from self._exporter_metrics(state)
        yield from self._module_metrics(() if snapshot is None else snapshot.stations,
                                        state.cadences, now)

    def _exporter_metrics(self, state: WeatherState) -> Iterator[Metric]:
        snapshot, status = state.snapshot, state.status
        token = self._tokens.status()
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
            family = EXPORTER_METRICS[key].family()
            assert isinstance(family, GaugeMetricFamily)
            family.add_metric([], value)
            yield family
        auth = _gauge("auth_state")
        for name in AUTH_STATES:
            auth.add_metric([name], 1.0 if token.state.value == name else 0.0)
        yield auth
        yield self._scope_missing(state, token.scope)
        build = EXPORTER_METRICS["build"].family()
        assert isinstance(build, InfoMetricFamily)
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
        readings = [(spec, _family(spec.metric)) for spec in READING_METRICS]
        module = {key: _family(spec) for key, spec in GO_MODULE_METRICS.items()}
        health = {key: _family(spec) for key, spec in HEALTH_METRICS.items()}
        info = MODULE_INFO.family()
        assert isinstance(info, InfoMetricFamily)
        place = DEVICE_METRICS["place"].family()
        assert isinstance(place, InfoMetricFamily)
        period = _family(DEVICE_METRICS["upload_period"])
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
                 refresh_errors: Callable[[], Mapping[str, int]],
                 alerted: tuple[tuple[str, str], ...] = ALERTED_REQUESTS) -> None:
        self._request_counts = request_counts
        self._refresh_errors = refresh_errors
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
        reasons = {**dict.fromkeys(ALERTED_REFRESH_ERRORS, 0), **self._refresh_errors()}
        for reason, count in sorted(reasons.items()):
            errors.add_metric([reason], float(count))
        yield errors


BUDGET_CALLERS = ("backfill", "energy", "weather")
"""Exported at 0 before their first call, so that a panel or alert has its series."""
BUDGET_WINDOWS = (("10s", "by_caller_10s"), ("1h", "by_caller"))


POLLERS = ("energy", "weather")


class BudgetCollector(Collector):
    """`netatmo_exporter_api_budget_calls{caller,window}`: the service's budget for the
    account as it stands, the calls a backfill booked through the control socket included;
    `netatmo_exporter_api_budget_waiting{caller}` and `..._wait_seconds_total{caller}`: the
    service's pollers waiting for room in it."""

    def __init__(self, use: Callable[[], BudgetUse],
                 waits: Callable[[], BudgetWaitState] = BudgetWaitState) -> None:
        self._use = use
        self._waits = waits

    def describe(self) -> Iterator[Metric]:
        yield BUDGET_METRIC.family()
        for spec in BUDGET_WAIT_METRICS.values():
            yield spec.family()

    def collect(self) -> Iterator[Metric]:
        use = self._use()
        family = _family(BUDGET_METRIC)
        for window, field in BUDGET_WINDOWS:
            counts: dict[str, int] = {**dict.fromkeys(BUDGET_CALLERS, 0),
                                      **dict(getattr(use, field))}
            for caller, count in sorted(counts.items()):
                family.add_metric([caller, window], float(count))
        yield family
        waits = self._waits()
        waiting = {wait.caller for wait in waits.waiting}
        waited = {**dict.fromkeys(POLLERS, 0.0), **dict(waits.waited)}
        gauge = _family(BUDGET_WAIT_METRICS["waiting"])
        counter = BUDGET_WAIT_METRICS["waited"].family()
        assert isinstance(counter, CounterMetricFamily)
        for caller in sorted(waited):
            gauge.add_metric([caller], 1.0 if caller in waiting else 0.0)
            counter.add_metric([caller], waited[caller])
        yield gauge
        yield counter


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
