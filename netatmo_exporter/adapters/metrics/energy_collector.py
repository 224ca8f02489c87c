"""Prometheus collector for Netatmo Energy: rooms, heating modules and homes.

Exposition, for a valve in a room and its home:

    netatmo_room_temperature_celsius{home="Maison",room="Chambre"} 18.5
    netatmo_room_setpoint_mode{home="Maison",mode="schedule",room="Chambre"} 1.0
    netatmo_room_heating_power_request_ratio{home="Maison",room="Chambre"} 0.4
    netatmo_module_battery_volts{home="Maison",module="Vanne chambre",room="Chambre"} 2.9
    netatmo_module_battery_state{home="Maison",module="Vanne chambre",room="Chambre",...} 1.0
    netatmo_home_status_up{home="Maison"} 1.0

Module health shares its families with the weather modules (`netatmo_module_reachable`,
`_battery_volts`, `_rf_signal_strength`, `_wifi_signal_strength`, `_info`), labelled
`module`, `room`, `home` instead of `module`, `station`, `home`; `ScrapeCollector` yields
each shared family once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from netatmo_exporter.adapters.metrics.energy_metrics import (
    ENERGY_METRICS,
    HEATING_MODULE_METRICS,
    HOME_METRICS,
    ROOM_METRICS,
    SHARED_MODULE_METRICS,
)
from netatmo_exporter.adapters.metrics.spec import MetricSpec
from netatmo_exporter.adapters.metrics.weather_metrics import SCOPE_MISSING
from netatmo_exporter.domain.authorization.scopes import THERMOSTAT_SCOPE
from netatmo_exporter.domain.energy.model import (
    BATTERY_STATES,
    HEATING_TYPES,
    SETPOINT_MODES,
    EnergySnapshot,
    HeatingModuleRow,
    RoomRow,
    heating_module_rows,
    home_labels,
    room_rows,
)
from netatmo_exporter.domain.energy.poller import EnergyState, ErrorCounts
from netatmo_exporter.domain.read_model import ReadService, ServiceReading

HOME_MODES = ("schedule", "away", "hg")
BOILER_TYPES = frozenset(HEATING_TYPES) - {"NRV"}

# Exported at 0 from the start, as the weather endpoints' (see ALERTED_REQUESTS).
ALERTED_ENERGY_REQUESTS = tuple((endpoint, outcome) for endpoint in ("homesdata", "homestatus")
                                for outcome in ("ok", "rate_limited"))


class EnergyCollector(Collector):
    """Rooms, heating modules and homes, rendered from one reading of the service: the
    Energy poller's state and the token's granted scopes of the same moment."""

    def __init__(self, read: ReadService) -> None:
        self._read = read

    def describe(self) -> Iterator[Metric]:
        """The families by name, so that a scrape's `name[]` filter finds them."""
        return (spec.family() for spec in (*ENERGY_METRICS, SCOPE_MISSING))

    def collect(self) -> Iterator[Metric]:
        return self.render(self._read())

    def render(self, reading: ServiceReading) -> Iterator[Metric]:
        state = reading.energy or EnergyState()
        snapshot = state.snapshot
        yield from self._room_metrics(room_rows(snapshot))
        yield from self._module_metrics(heating_module_rows(snapshot))
        yield from self._home_metrics(snapshot, state.error_counts)
        granted = reading.token.scope
        missing = _gauge(SCOPE_MISSING)
        missing.add_metric([THERMOSTAT_SCOPE], 1.0 if (
            (snapshot is not None and snapshot.scope_missing)
            or (granted is not None and THERMOSTAT_SCOPE not in granted)) else 0.0)
        yield missing

    def _room_metrics(self, rows: Iterable[RoomRow]) -> Iterator[Metric]:
        gauges = {key: _gauge(spec) for key, spec in ROOM_METRICS.items() if key != "info"}
        info = _info(ROOM_METRICS["info"])
        for row in rows:
            values = [row.room, row.home]
            info.add_metric([*values, row.setup.id, row.home_setup.id, row.setup.type or ""], {})
            status = row.status
            if status is None:
                continue
            _add(gauges["temperature"], values, status.measured_temperature)
            _add(gauges["setpoint"], values, status.setpoint_temperature)
            _add_choice(gauges["mode"], values, SETPOINT_MODES, status.setpoint_mode)
            _add(gauges["start"], values, status.setpoint_start_time)
            _add(gauges["end"], values, status.setpoint_end_time)
            power = status.heating_power_request
            _add(gauges["power"], values, None if power is None else power / 100.0)
            _add(gauges["window"], values, _flag(status.open_window))
            _add(gauges["anticipating"], values, _flag(status.anticipating))
            _add(gauges["reachable"], values, _flag(status.reachable))
        yield from gauges.values()
        yield info

    def _module_metrics(self, rows: Iterable[HeatingModuleRow]) -> Iterator[Metric]:
        shared = {key: _gauge(spec) for key, spec in SHARED_MODULE_METRICS.items()
                  if key != "info"}
        own = {key: _gauge(spec) for key, spec in HEATING_MODULE_METRICS.items()}
        info = _info(SHARED_MODULE_METRICS["info"])
        for row in rows:
            values = [row.module, row.room, row.home]
            status = row.status
            firmware = None if status is None else status.firmware_revision
            info.add_metric([*values, row.setup.id, row.setup.room_id or "", row.home_setup.id,
                             row.setup.type, "" if firmware is None else str(firmware),
                             row.setup.bridge or ""], {})
            if status is None:
                continue
            _add(shared["reachable"], values, _flag(status.reachable))
            level = status.battery_level
            _add(shared["battery_volts"], values, level / 1000.0 if level else None)
            _add(shared["rf"], values, status.rf_strength)
            _add(shared["wifi"], values, status.wifi_strength)
            _add_choice(own["battery_state"], values, BATTERY_STATES, status.battery_state)
            if row.setup.type in BOILER_TYPES:
                _add(own["boiler"], values, _flag(status.boiler_status))
        yield from shared.values()
        yield info
        yield from own.values()

    def _home_metrics(self, snapshot: EnergySnapshot | None, error_counts: ErrorCounts
                      ) -> Iterator[Metric]:
        mode = _gauge(HOME_METRICS["mode"])
        up = _gauge(HOME_METRICS["up"])
        homes = () if snapshot is None else snapshot.homes
        labels = dict(zip((h.setup.id for h in homes), home_labels(homes), strict=True))
        for report in homes:
            values = [labels[report.setup.id]]
            _add_choice(mode, values, HOME_MODES, report.setup.therm_mode)
            up.add_metric(values, 0.0 if report.status is None else 1.0)
        errors = HOME_METRICS["errors"].family()
        assert isinstance(errors, CounterMetricFamily)
        for (home_id, reason), count in sorted(error_counts.items()):
            home = labels.get(home_id, f"id-{home_id}" if home_id else "")
            errors.add_metric([home, reason], float(count))
        yield mode
        yield up
        yield errors


def _gauge(spec: MetricSpec) -> GaugeMetricFamily:
    family = spec.family()
    assert isinstance(family, GaugeMetricFamily)
    return family


def _info(spec: MetricSpec) -> InfoMetricFamily:
    family = spec.family()
    assert isinstance(family, InfoMetricFamily)
    return family


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


def _add(family: GaugeMetricFamily, values: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(values, value)


def _add_choice(family: GaugeMetricFamily, values: list[str], known: tuple[str, ...],
                current: str | None) -> None:
    """One series per known value, 1 for the current one; an unknown current value is
    added too, so it shows rather than vanishing."""
    if current is None:
        return
    for choice in (*known, *(() if current in known else (current,))):
        family.add_metric([*values, choice], 1.0 if choice == current else 0.0)
