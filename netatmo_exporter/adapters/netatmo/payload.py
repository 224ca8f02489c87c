"""Turns Netatmo's JSON into domain objects, tolerating whatever real accounts send."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from netatmo_exporter.domain.errors import BadResponse
from netatmo_exporter.domain.weather.model import (
    TRENDS,
    DeviceKind,
    Module,
    Place,
    Readings,
    Station,
)

MAX_MAGNITUDE = 1e11
"""Larger than any reading, and than any time up to the year 5000 (datetime ends at 9999)."""

_READING_FIELDS = {
    "time_utc": "time_utc",
    "Temperature": "temperature",
    "Humidity": "humidity",
    "CO2": "co2",
    "Noise": "noise",
    "Pressure": "pressure",
    "AbsolutePressure": "absolute_pressure",
    "min_temp": "min_temp",
    "max_temp": "max_temp",
    "date_min_temp": "date_min_temp",
    "date_max_temp": "date_max_temp",
    "Rain": "rain",
    "sum_rain_1": "sum_rain_1",
    "sum_rain_24": "sum_rain_24",
    "WindStrength": "wind_strength",
    "WindAngle": "wind_angle",
    "GustStrength": "gust_strength",
    "GustAngle": "gust_angle",
    "max_wind_str": "max_wind_strength",
    "max_wind_angle": "max_wind_angle",
    "date_max_wind_str": "date_max_wind_strength",
    "health_idx": "health_idx",
}


def parse_devices(payload: object, kind: DeviceKind) -> tuple[Station, ...]:
    """`{"body": {"devices": [...]}}` to stations; entries that are not objects are skipped."""
    body = _mapping(payload).get("body")
    devices = _mapping(body).get("devices") if isinstance(body, Mapping) else None
    if not isinstance(devices, list):
        raise BadResponse("Netatmo's answer has no device list (body.devices)")
    return tuple(
        parse_station(device, kind) for device in devices
        if isinstance(device, Mapping) and _text(device.get("_id"))
    )


def parse_station(device: Mapping[str, Any], kind: DeviceKind) -> Station:
    station_id = _text(device.get("_id")) or ""
    raw_modules = device.get("modules")
    modules = tuple(
        _module(raw) for raw in (raw_modules if isinstance(raw_modules, list) else [])
        if isinstance(raw, Mapping) and _text(raw.get("_id"))
    )
    name = _text(device.get("station_name")) or (
        _text(device.get("name")) if kind == "homecoach" else None
    )
    main = _module(device, last_seen_key="last_status_store")
    if main.name is None and kind == "homecoach":
        main = replace(main, name=name)
    return Station(
        id=station_id,
        kind=kind,
        main=main,
        name=name,
        home_id=_text(device.get("home_id")),
        home_name=_text(device.get("home_name")),
        modules=modules,
        place=_place(device.get("place")),
        last_status_store=_number(device.get("last_status_store")),
        favorite=device.get("favorite") is True,
    )


def _module(raw: Mapping[str, Any], last_seen_key: str = "last_seen") -> Module:
    reachable = raw.get("reachable")
    return Module(
        id=_text(raw.get("_id")) or "",
        type=_text(raw.get("type")) or "unknown",
        name=_text(raw.get("module_name")),
        firmware=_int(raw.get("firmware")),
        reachable=reachable if isinstance(reachable, bool) else None,
        battery_percent=_number(raw.get("battery_percent")),
        battery_vp=_number(raw.get("battery_vp")),
        rf_status=_number(raw.get("rf_status")),
        wifi_status=_number(raw.get("wifi_status")),
        last_seen=_number(raw.get(last_seen_key)),
        readings=_readings(raw.get("dashboard_data")),
    )


def _readings(raw: object) -> Readings | None:
    if not isinstance(raw, Mapping):
        return None
    values: dict[str, Any] = {
        attr: _number(raw.get(key)) for key, attr in _READING_FIELDS.items()
    }
    values["temp_trend"] = _trend(raw.get("temp_trend"))
    values["pressure_trend"] = _trend(raw.get("pressure_trend"))
    return Readings(**values)


def _place(raw: object) -> Place:
    if not isinstance(raw, Mapping):
        return Place()
    location = raw.get("location")
    lon = lat = None
    if isinstance(location, list) and len(location) == 2:
        lon, lat = _number(location[0]), _number(location[1])
    return Place(
        altitude=_number(raw.get("altitude")),
        city=_text(raw.get("city")),
        country=_text(raw.get("country")),
        timezone=_text(raw.get("timezone")),
        longitude=lon,
        latitude=lat,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadResponse("Netatmo's answer is not a JSON object")
    return value


def _text(value: object) -> str | None:
    """A non-empty string, with any half of a UTF-16 pair (JSON's `"\\ud800"` alone, which
    no encoder writes) replaced by U+FFFD."""
    if not isinstance(value, str) or not value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value


def _number(value: object) -> float | None:
    """A finite number within `MAX_MAGNITUDE` (no reading, time or voltage is larger), else
    None: `1e300`, a 400-digit integer or NaN is no reading."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and abs(value) > MAX_MAGNITUDE:
        return None  # before float(), which overflows on huge integers
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= MAX_MAGNITUDE else None


def _int(value: object) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _trend(value: object) -> int | None:
    return TRENDS.get(value) if isinstance(value, str) else None
