"""Netatmo Energy as the exporter understands it: homes, their rooms and heating modules.

`homesdata` gives the setup (names, which module sits in which room), `homestatus` the live
state of one home. Every field is optional: None means Netatmo did not report it.
"""

from __future__ import annotations

from dataclasses import dataclass

from netatmo_exporter.domain.errors import NetatmoError
from netatmo_exporter.domain.weather.labels import tell_apart

SETPOINT_MODES = ("schedule", "manual", "away", "hg", "off", "max", "home")
BATTERY_STATES = ("full", "high", "medium", "low", "very_low")
HEATING_TYPES = {
    "NAPlug": "Relay",
    "NATherm1": "Thermostat",
    "NRV": "Valve",
    "OTH": "OpenTherm relay",
    "OTM": "OpenTherm thermostat",
}


@dataclass(frozen=True, slots=True)
class RoomSetup:
    id: str
    name: str | None = None
    type: str | None = None
    module_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModuleSetup:
    id: str
    type: str
    name: str | None = None
    room_id: str | None = None
    bridge: str | None = None


@dataclass(frozen=True, slots=True)
class HomeSetup:
    """One home of `homesdata`."""

    id: str
    name: str | None = None
    therm_mode: str | None = None
    rooms: tuple[RoomSetup, ...] = ()
    modules: tuple[ModuleSetup, ...] = ()


@dataclass(frozen=True, slots=True)
class RoomStatus:
    id: str
    reachable: bool | None = None
    measured_temperature: float | None = None
    setpoint_temperature: float | None = None
    setpoint_mode: str | None = None
    setpoint_start_time: float | None = None
    setpoint_end_time: float | None = None
    heating_power_request: float | None = None
    open_window: bool | None = None
    anticipating: bool | None = None


@dataclass(frozen=True, slots=True)
class ModuleStatus:
    id: str
    type: str | None = None
    reachable: bool | None = None
    battery_state: str | None = None
    battery_level: float | None = None
    rf_strength: float | None = None
    wifi_strength: float | None = None
    boiler_status: bool | None = None
    firmware_revision: int | None = None
    bridge: str | None = None


@dataclass(frozen=True, slots=True)
class HomeStatus:
    """One `homestatus` answer; `errors` are (module id, code) pairs Netatmo listed."""

    home_id: str
    rooms: tuple[RoomStatus, ...] = ()
    modules: tuple[ModuleStatus, ...] = ()
    errors: tuple[tuple[str, int], ...] = ()


class HomeUnavailable(NetatmoError):
    """`homestatus` answered for the home with errors only, no room or module state."""

    reason = "home_errors"


@dataclass(frozen=True, slots=True)
class HomeReport:
    """A home's setup with its latest status, or why the status could not be read."""

    setup: HomeSetup
    status: HomeStatus | None = None
    error_reason: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class EnergySnapshot:
    """Everything one Energy refresh learned, swapped in whole."""

    homes: tuple[HomeReport, ...]
    fetched_at: float
    error_reason: str | None = None
    error_message: str | None = None
    scope_missing: bool = False


@dataclass(frozen=True, slots=True)
class RoomRow:
    room: str
    home: str
    setup: RoomSetup
    home_setup: HomeSetup
    status: RoomStatus | None


@dataclass(frozen=True, slots=True)
class HeatingModuleRow:
    module: str
    room: str
    home: str
    setup: ModuleSetup
    home_setup: HomeSetup
    status: ModuleStatus | None


def name_or_id(name: str | None, ident: str) -> str:
    return name if name else f"id-{ident}"


def home_labels(homes: tuple[HomeReport, ...]) -> list[str]:
    """A label per home: its name, or `id-<id>`; homes sharing a name get their id added."""
    labels = tell_apart([(name_or_id(h.setup.name, h.setup.id),) for h in homes],
                        [h.setup.id for h in homes])
    return [label[0] for label in labels]


def room_rows(snapshot: EnergySnapshot | None) -> list[RoomRow]:
    if snapshot is None:
        return []
    raw: list[tuple[tuple[str, str], str, RoomSetup, HomeReport]] = []
    for report, home in zip(snapshot.homes, home_labels(snapshot.homes), strict=True):
        for room in report.setup.rooms:
            raw.append(((name_or_id(room.name, room.id), home), room.id, room, report))
    labels = tell_apart([r[0] for r in raw], [r[1] for r in raw])
    return [RoomRow(label[0], label[1], room, report.setup, _room_status(report, room.id))
            for label, (_, _, room, report) in zip(labels, raw, strict=True)]


def heating_module_rows(snapshot: EnergySnapshot | None) -> list[HeatingModuleRow]:
    if snapshot is None:
        return []
    room_names = {(row.home_setup.id, row.setup.id): row.room for row in room_rows(snapshot)}
    raw: list[tuple[tuple[str, str, str], str, ModuleSetup, HomeReport]] = []
    for report, home in zip(snapshot.homes, home_labels(snapshot.homes), strict=True):
        for module in report.setup.modules:
            room = room_names.get((report.setup.id, module.room_id or ""), "")
            raw.append(((name_or_id(module.name, module.id), room, home), module.id, module,
                        report))
    labels = tell_apart([r[0] for r in raw], [r[1] for r in raw])
    return [HeatingModuleRow(label[0], label[1], label[2], module, report.setup,
                      _module_status(report, module.id))
            for label, (_, _, module, report) in zip(labels, raw, strict=True)]


def _room_status(report: HomeReport, room_id: str) -> RoomStatus | None:
    if report.status is None:
        return None
    return next((room for room in report.status.rooms if room.id == room_id), None)


def _module_status(report: HomeReport, module_id: str) -> ModuleStatus | None:
    if report.status is None:
        return None
    found = next((m for m in report.status.modules if m.id == module_id), None)
    if found is None and any(ident == module_id for ident, _ in report.status.errors):
        return ModuleStatus(module_id, reachable=False)
    return found
