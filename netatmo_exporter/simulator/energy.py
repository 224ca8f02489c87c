"""Netatmo Energy homes of the simulated account, rendered as ``homesdata`` and
``homestatus`` answer in Netatmo's own shapes.

The demo homes (:data:`DEMO_ENERGY_HOMES`)
-----------------------------------------

Home ``5f1e3a2b4c5d6e7f8a9b0c1d`` "Maison" (the weather station's home), ``therm_mode``
schedule:

* ``70:ee:50:ee:00:01`` NAPlug "Relais" (no room): wifi_strength 52, firmware 211.
* ``04:00:00:ee:00:01`` NATherm1 "Thermostat" in "Salon": battery full, 4100 mV, rf 62,
  boiler_status true.
* ``09:00:00:ee:00:01`` NRV "Vanne chambre" in "Chambre": battery medium, 2900 mV.
* ``09:00:00:ee:00:02`` NRV "Vanne bureau" in "Bureau": unreachable, battery low, 2450 mV.
* ``09:00:00:ee:00:03`` NRV without a name in "Salle de bain": battery high, 3100 mV.
* ``70:ee:50:ee:00:09`` NACamera "Caméra entrée": a type the exporter does not know.

Rooms: "Salon" 20.5 °C, setpoint 21 (schedule), heating power request 40; "Chambre"
18.0 °C, setpoint 19 (manual, ending in an hour), window open; "Bureau" unreachable,
setpoint 19 (schedule), no temperature; "Salle de bain" 21.5 °C, setpoint 22 (max), power
request 100.

Home ``6a2b3c4d5e6f7a8b9c0d1e2f`` "Chalet", ``therm_mode`` hg (frost guard): relay
``70:ee:50:ee:00:02`` "Relais chalet" and thermostat ``04:00:00:ee:00:02`` in "Séjour".
Its relay is offline: ``homestatus`` answers with errors only
(``{"body": {"errors": [{"code": 6, "id": "70:ee:50:ee:00:02"}], "home": {"id": ...}}}``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .history import JSON

MAISON = "5f1e3a2b4c5d6e7f8a9b0c1d"
CHALET = "6a2b3c4d5e6f7a8b9c0d1e2f"


@dataclass(frozen=True)
class EnergyRoom:
    id: str
    name: str | None
    type: str
    status: Mapping[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True)
class EnergyModule:
    """A heating module (or any module of the home); ``status=None`` leaves it out of
    ``homestatus``."""

    id: str
    type: str
    name: str | None
    room_id: str | None = None
    bridge: str | None = None
    status: Mapping[str, JSON] | None = field(default_factory=dict)


@dataclass(frozen=True)
class EnergyHome:
    """A home; non-empty ``status_errors`` make ``homestatus`` answer with errors only."""

    id: str
    name: str | None
    therm_mode: str
    rooms: tuple[EnergyRoom, ...] = ()
    modules: tuple[EnergyModule, ...] = ()
    status_errors: tuple[Mapping[str, JSON], ...] = ()


def homesdata_home(home: EnergyHome) -> dict[str, JSON]:
    out: dict[str, JSON] = {"id": home.id}
    if home.name is not None:
        out["name"] = home.name
    out.update({"altitude": 173, "country": "FR", "timezone": "Europe/Paris",
                "therm_setpoint_default_duration": 180, "therm_mode": home.therm_mode})
    out["rooms"] = [_room_setup(home, room) for room in home.rooms]
    out["modules"] = [_module_setup(module) for module in home.modules]
    return out


def homestatus_body(home: EnergyHome, render: Callable[[JSON], JSON]) -> dict[str, JSON]:
    """The ``body`` of ``homestatus`` for one home; ``render`` resolves live values."""
    if home.status_errors:
        return {"errors": [dict(error) for error in home.status_errors],
                "home": {"id": home.id}}
    rooms = [{"id": room.id, **render(room.status)} for room in home.rooms]
    modules = [{"id": module.id, "type": module.type, **render(module.status)}
               for module in home.modules if module.status is not None]
    return {"home": {"id": home.id, "rooms": rooms, "modules": modules}}


def _room_setup(home: EnergyHome, room: EnergyRoom) -> dict[str, JSON]:
    out: dict[str, JSON] = {"id": room.id}
    if room.name is not None:
        out["name"] = room.name
    out["type"] = room.type
    out["module_ids"] = [m.id for m in home.modules if m.room_id == room.id]
    return out


def _module_setup(module: EnergyModule) -> dict[str, JSON]:
    out: dict[str, JSON] = {"id": module.id, "type": module.type}
    if module.name is not None:
        out["name"] = module.name
    out["setup_date"] = 1_600_000_000
    if module.room_id is not None:
        out["room_id"] = module.room_id
    if module.bridge is not None:
        out["bridge"] = module.bridge
    return out


def demo_energy_homes(drift: Callable[[float, float], JSON], ago: Callable[[int], JSON]
                      ) -> tuple[EnergyHome, ...]:
    """The demo homes; ``drift(base, amplitude)`` and ``ago(seconds)`` build live values."""
    relay, chalet_relay = "70:ee:50:ee:00:01", "70:ee:50:ee:00:02"
    maison = EnergyHome(
        id=MAISON, name="Maison", therm_mode="schedule",
        rooms=(
            EnergyRoom("2255031728", "Salon", "livingroom", {
                "reachable": True, "anticipating": False, "heating_power_request": 40,
                "open_window": False, "therm_measured_temperature": drift(20.5, 0.3),
                "therm_setpoint_temperature": 21, "therm_setpoint_mode": "schedule",
                "therm_setpoint_start_time": ago(5400), "therm_setpoint_end_time": ago(-9000),
            }),
            EnergyRoom("2255031729", "Chambre", "bedroom", {
                "reachable": True, "anticipating": False, "heating_power_request": 0,
                "open_window": True, "therm_measured_temperature": drift(18.0, 0.4),
                "therm_setpoint_temperature": 19, "therm_setpoint_mode": "manual",
                "therm_setpoint_start_time": ago(1800), "therm_setpoint_end_time": ago(-3600),
            }),
            EnergyRoom("2255031730", "Bureau", "office", {
                "reachable": False, "therm_setpoint_temperature": 19,
                "therm_setpoint_mode": "schedule",
            }),
            EnergyRoom("2255031731", "Salle de bain", "bathroom", {
                "reachable": True, "anticipating": False, "heating_power_request": 100,
                "open_window": False, "therm_measured_temperature": drift(21.5, 0.3),
                "therm_setpoint_temperature": 22, "therm_setpoint_mode": "max",
                "therm_setpoint_start_time": ago(600), "therm_setpoint_end_time": ago(-1800),
            }),
        ),
        modules=(
            EnergyModule(relay, "NAPlug", "Relais", status={
                "firmware_revision": 211, "wifi_strength": 52, "rf_strength": 64}),
            EnergyModule("04:00:00:ee:00:01", "NATherm1", "Thermostat", "2255031728", relay, {
                "reachable": True, "battery_state": "full", "battery_level": 4100,
                "firmware_revision": 65, "rf_strength": 62, "boiler_status": True,
                "boiler_valve_comfort_boost": False, "bridge": relay}),
            EnergyModule("09:00:00:ee:00:01", "NRV", "Vanne chambre", "2255031729", relay, {
                "reachable": True, "battery_state": "medium", "battery_level": 2900,
                "firmware_revision": 79, "rf_strength": 70, "bridge": relay}),
            EnergyModule("09:00:00:ee:00:02", "NRV", "Vanne bureau", "2255031730", relay, {
                "reachable": False, "battery_state": "low", "battery_level": 2450,
                "firmware_revision": 79, "bridge": relay}),
            EnergyModule("09:00:00:ee:00:03", "NRV", None, "2255031731", relay, {
                "reachable": True, "battery_state": "high", "battery_level": 3100,
                "firmware_revision": 79, "rf_strength": 75, "bridge": relay}),
            EnergyModule("70:ee:50:ee:00:09", "NACamera", "Caméra entrée", status={
                "monitoring": "on", "sd_status": 4, "alim_status": 2, "wifi_strength": 66,
                "vpn_url": "https://example.invalid/camera", "is_local": True}),
        ),
    )
    chalet = EnergyHome(
        id=CHALET, name="Chalet", therm_mode="hg",
        rooms=(EnergyRoom("3366042811", "Séjour", "livingroom"),),
        modules=(
            EnergyModule(chalet_relay, "NAPlug", "Relais chalet"),
            EnergyModule("04:00:00:ee:00:02", "NATherm1", "Thermostat chalet", "3366042811",
                         chalet_relay),
        ),
        status_errors=({"code": 6, "id": chalet_relay},),
    )
    return (maison, chalet)
