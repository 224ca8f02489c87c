"""Turns Netatmo's Energy JSON (`homesdata`, `homestatus`) into domain objects.

Field names are Netatmo's own. A field that is missing or of the wrong type is None (not
reported), never zero; entries without an id and unknown module types never break parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netatmo_exporter.adapters.netatmo.payload import _int, _mapping, _number, _text
from netatmo_exporter.domain.energy.model import (
    HomeSetup,
    HomeStatus,
    HomeUnavailable,
    ModuleSetup,
    ModuleStatus,
    RoomSetup,
    RoomStatus,
)
from netatmo_exporter.domain.errors import BadResponse


def parse_homes(payload: object) -> tuple[HomeSetup, ...]:
    """`{"body": {"homes": [...]}}` to the homes' setup."""
    body = _mapping(payload).get("body")
    homes = body.get("homes") if isinstance(body, Mapping) else None
    if not isinstance(homes, list):
        raise BadResponse("Netatmo's homesdata answer has no home list (body.homes)")
    return tuple(_home(home) for home in _objects(homes))


def parse_home_status(payload: object, home_id: str) -> HomeStatus:
    """`{"body": {"home": {...}, "errors": [...]}}` to one home's state. A home for which
    Netatmo sends errors only (its relay offline, for example) raises `HomeUnavailable`."""
    body = _mapping(payload).get("body")
    if not isinstance(body, Mapping):
        raise BadResponse("Netatmo's homestatus answer has no body")
    home = body.get("home")
    home = home if isinstance(home, Mapping) else {}
    errors = (*_errors(body.get("errors")), *_errors(home.get("errors")))
    rooms = tuple(_room(room) for room in _objects(home.get("rooms")))
    modules = tuple(_module_status(module) for module in _objects(home.get("modules")))
    if not rooms and not modules and errors:
        codes = ", ".join(f"{ident or 'home'}: code {code}" for ident, code in errors)
        raise HomeUnavailable(f"Netatmo homestatus for home {home_id}: errors only ({codes})")
    return HomeStatus(_text(home.get("id")) or home_id, rooms, modules, errors)


def _objects(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping) and _text(item.get("id"))]


def _home(raw: Mapping[str, Any]) -> HomeSetup:
    return HomeSetup(
        id=_text(raw.get("id")) or "",
        name=_text(raw.get("name")),
        therm_mode=_text(raw.get("therm_mode")),
        rooms=tuple(
            RoomSetup(id=_text(room.get("id")) or "", name=_text(room.get("name")),
                      type=_text(room.get("type")), module_ids=_texts(room.get("module_ids")))
            for room in _objects(raw.get("rooms"))),
        modules=tuple(
            ModuleSetup(id=_text(module.get("id")) or "",
                        type=_text(module.get("type")) or "unknown",
                        name=_text(module.get("name")), room_id=_text(module.get("room_id")),
                        bridge=_text(module.get("bridge")))
            for module in _objects(raw.get("modules"))),
    )


def _room(raw: Mapping[str, Any]) -> RoomStatus:
    return RoomStatus(
        id=_text(raw.get("id")) or "",
        reachable=_bool(raw.get("reachable")),
        measured_temperature=_number(raw.get("therm_measured_temperature")),
        setpoint_temperature=_number(raw.get("therm_setpoint_temperature")),
        setpoint_mode=_text(raw.get("therm_setpoint_mode")),
        setpoint_start_time=_number(raw.get("therm_setpoint_start_time")),
        setpoint_end_time=_number(raw.get("therm_setpoint_end_time")),
        heating_power_request=_number(raw.get("heating_power_request")),
        open_window=_bool(raw.get("open_window")),
        anticipating=_bool(raw.get("anticipating")),
    )


def _module_status(raw: Mapping[str, Any]) -> ModuleStatus:
    return ModuleStatus(
        id=_text(raw.get("id")) or "",
        type=_text(raw.get("type")),
        reachable=_bool(raw.get("reachable")),
        battery_state=_text(raw.get("battery_state")),
        battery_level=_number(raw.get("battery_level")),
        rf_strength=_number(raw.get("rf_strength")),
        wifi_strength=_number(raw.get("wifi_strength")),
        boiler_status=_bool(raw.get("boiler_status")),
        firmware_revision=_int(raw.get("firmware_revision")),
        bridge=_text(raw.get("bridge")),
    )


def _errors(value: object) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, list):
        return ()
    found = []
    for item in value:
        if isinstance(item, Mapping):
            code = _int(item.get("code"))
            found.append((_text(item.get("id")) or "", -1 if code is None else code))
    return tuple(found)


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(text for text in (_text(item) for item in value) if text)


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None
