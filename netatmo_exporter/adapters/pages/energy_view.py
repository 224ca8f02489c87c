"""What the status page says about Netatmo Energy: one row per room, in the same plain words
as the stations table, and a line for each home Netatmo could not report on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from netatmo_exporter.domain.energy.model import (
    EnergySnapshot,
    HeatingModuleRow,
    RoomRow,
    heating_module_rows,
    home_labels,
    room_rows,
)
from netatmo_exporter.domain.energy.poller import EnergyState

MODE_WORDS = {
    "schedule": "schedule",
    "manual": "manual",
    "away": "away",
    "hg": "frost guard",
    "off": "off",
    "max": "boost",
    "home": "home",
}
BATTERY_WORDS = {"very_low": "very low"}
ENERGY_HINT = ("Thermostats, valves or relays? Add read_thermostat to --scope "
               "(NETATMO_SCOPE), restart the exporter and authorize again.")


@dataclass(frozen=True)
class RoomLine:
    home: str
    room: str
    temperature: str
    setpoint: str
    demand: str
    window: str
    batteries: str
    health: str  # "ok", "window-open", "unreachable", "no-data"


@dataclass(frozen=True)
class HomeProblem:
    home: str
    message: str


def page_values(energy: EnergyState | None) -> dict[str, Any]:
    """What rooms.tpl needs; without read_thermostat in --scope (no Energy state) only
    the hint."""
    snapshot = None if energy is None else energy.snapshot
    return {"energy_enabled": energy is not None, "energy_hint": ENERGY_HINT,
            "rooms": room_lines(snapshot), "home_problems": home_problems(snapshot)}


def room_lines(snapshot: EnergySnapshot | None) -> list[RoomLine]:
    modules = heating_module_rows(snapshot)
    lines = [_line(row, [m for m in modules if m.setup.room_id == row.setup.id
                         and m.home_setup.id == row.home_setup.id])
             for row in room_rows(snapshot)]
    return [dataclasses.replace(line, home="") if i and lines[i - 1].home == line.home
            else line for i, line in enumerate(lines)]


def home_problems(snapshot: EnergySnapshot | None) -> list[HomeProblem]:
    if snapshot is None:
        return []
    problems = [HomeProblem(label, report.error_message or report.error_reason or "")
                for report, label in zip(snapshot.homes, home_labels(snapshot.homes),
                                         strict=True)
                if report.status is None]
    if snapshot.error_message:
        problems.insert(0, HomeProblem("", snapshot.error_message))
    return problems


def _line(row: RoomRow, modules: list[HeatingModuleRow]) -> RoomLine:
    status = row.status
    batteries = ", ".join(_battery(m) for m in modules if _battery(m))
    if status is None:
        return RoomLine(row.home, row.room, "no data", "", "", "", batteries, "no-data")
    temperature = ("" if status.measured_temperature is None
                   else f"{status.measured_temperature:.1f}\u00a0°C")
    setpoint = "" if status.setpoint_temperature is None else (
        f"{status.setpoint_temperature:.1f}\u00a0°C")
    if status.setpoint_mode is not None:
        mode = MODE_WORDS.get(status.setpoint_mode, status.setpoint_mode)
        setpoint = f"{setpoint} ({mode})" if setpoint else mode
    demand = ("" if status.heating_power_request is None
              else f"{status.heating_power_request:.0f}\u00a0%")
    window = {True: "open", False: "closed", None: ""}[status.open_window]
    unreachable = status.reachable is False or any(
        m.status is not None and m.status.reachable is False for m in modules)
    health = ("unreachable" if unreachable else "window-open" if status.open_window
              else "ok")
    if not temperature and status.reachable is False:
        temperature = "unreachable"
    return RoomLine(row.home, row.room, temperature, setpoint, demand, window, batteries,
                    health)


def _battery(module: HeatingModuleRow) -> str:
    status = module.status
    if status is None or (status.battery_state is None and status.battery_level is None):
        return ""
    parts = []
    if status.battery_state is not None:
        parts.append(BATTERY_WORDS.get(status.battery_state, status.battery_state))
    if status.battery_level:
        parts.append(f"{status.battery_level / 1000:.2f}\u00a0V")
    unreachable = " (unreachable)" if status.reachable is False else ""
    return f"{module.module}: {', '.join(parts)}{unreachable}"
