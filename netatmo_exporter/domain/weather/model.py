"""Weather data as the exporter understands it: stations, modules, readings, snapshots."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

DeviceKind = Literal["station", "homecoach"]

NEVER_PAIRED_RF = 255
NEVER_PAIRED_BATTERY_VP = 65535
PLACEHOLDER_FIRMWARE = 255

TRENDS = {"up": 1, "stable": 0, "down": -1}


@dataclass(frozen=True, slots=True)
class Readings:
    """One module's `dashboard_data`, in Netatmo's units (°C, %, ppm, dB, mbar, km/h, mm)."""

    time_utc: float | None = None
    temperature: float | None = None
    humidity: float | None = None
    co2: float | None = None
    noise: float | None = None
    pressure: float | None = None
    absolute_pressure: float | None = None
    min_temp: float | None = None
    max_temp: float | None = None
    date_min_temp: float | None = None
    date_max_temp: float | None = None
    temp_trend: int | None = None
    pressure_trend: int | None = None
    rain: float | None = None
    sum_rain_1: float | None = None
    sum_rain_24: float | None = None
    wind_strength: float | None = None
    wind_angle: float | None = None
    gust_strength: float | None = None
    gust_angle: float | None = None
    max_wind_strength: float | None = None
    max_wind_angle: float | None = None
    date_max_wind_strength: float | None = None
    health_idx: float | None = None


@dataclass(frozen=True, slots=True)
class Place:
    altitude: float | None = None
    city: str | None = None
    country: str | None = None
    timezone: str | None = None
    longitude: float | None = None
    latitude: float | None = None


@dataclass(frozen=True, slots=True)
class Module:
    """A main device (base station, Home Coach) or one of its radio modules."""

    id: str
    type: str
    name: str | None = None
    firmware: int | None = None
    reachable: bool | None = None
    battery_percent: float | None = None
    battery_vp: float | None = None
    rf_status: float | None = None
    wifi_status: float | None = None
    last_seen: float | None = None
    readings: Readings | None = None

    @property
    def never_paired(self) -> bool:
        return (
            self.rf_status == NEVER_PAIRED_RF
            or self.battery_vp == NEVER_PAIRED_BATTERY_VP
            or self.last_seen == 0
        )

    @property
    def known_firmware(self) -> int | None:
        """The firmware, unless it is the placeholder Netatmo sends for a module it has
        never heard from."""
        if self.never_paired or self.firmware == PLACEHOLDER_FIRMWARE:
            return None
        return self.firmware

    @property
    def measured_at(self) -> float | None:
        return None if self.readings is None else self.readings.time_utc


@dataclass(frozen=True, slots=True)
class Station:
    """A Netatmo device with its modules: a weather station (`NAMain`) or a Home Coach (`NHC`)."""

    id: str
    kind: DeviceKind
    main: Module
    name: str | None = None
    home_id: str | None = None
    home_name: str | None = None
    modules: tuple[Module, ...] = ()
    place: Place = field(default_factory=Place)
    last_status_store: float | None = None
    favorite: bool = False

    @property
    def all_modules(self) -> tuple[Module, ...]:
        return (self.main, *self.modules)

    @property
    def label(self) -> str:
        return self.name or self.home_name or self.main.name or f"id-{self.id}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one refresh learned, swapped in whole so a scrape never sees half of it."""

    stations: tuple[Station, ...]
    fetched_at: float
    skipped: tuple[str, ...] = ()


def is_stale(module: Module, now: float, age_stale: float) -> bool:
    """A module without a measurement, or with one older than `age_stale`, is stale."""
    measured = module.measured_at
    return measured is None or now - measured > age_stale


def data_age(module: Module, now: float) -> float | None:
    measured = module.measured_at
    return None if measured is None else max(0.0, now - measured)


def unique_stations(stations: Iterable[Station]) -> tuple[Station, ...]:
    """Each station once, as the live snapshot and the backfill list them: a station that
    is both the user's own and a favourite counts as the user's own, in first-seen order."""
    seen: dict[str, Station] = {}
    for station in stations:
        if station.id not in seen or seen[station.id].favorite:
            seen[station.id] = station
    return tuple(seen.values())
