"""Netatmo accounts served by the simulator, and how they render into Netatmo JSON.

An :class:`Account` is plain data: stations, favourite stations and Home Coaches whose
fields are JSON values, except for two kinds of live values that are computed at
request time:

* :class:`Drift` -- a reading that oscillates slowly around ``base``
  (``base + amplitude * sin(2*pi*(t + phase) / period)``, rounded to ``digits``).
  On a frozen account (``Account.frozen``) it is always exactly ``base``.
* :class:`Ago` -- a timestamp ``seconds`` before the data time (``now - seconds``).

Rendering is a pure function of the account and an integer ``now``:
``account.stations_body(now)`` and ``account.homecoaches_body(now)`` return exactly the
``body`` the cloud answers when its data time is ``now``. Tests can therefore compute
the expected answer, or use :func:`demo_account` with ``frozen=True`` where every
sensor value is the constant written below and every time field is ``now - age``.

The demo account (:func:`demo_account`)
---------------------------------------

User ``demo@example.com``; ``administrative`` asks for imperial units (``unit`` 1,
``windunit`` 1, ``pressureunit`` 2) to show that values stay metric.

Home ``5f1e3a2b4c5d6e7f8a9b0c1d`` "Maison" (Lyon, altitude 173 m):

* Station ``70:ee:50:00:00:01``, ``station_name`` "Maison (Lyon)", main module
  ``module_name`` "Salon" (NAMain, Temperature 21.5, Humidity 45, CO2 620, Noise 38,
  Pressure 1016.2, AbsolutePressure 995.4, min 20.1 / max 22.8, trends up / stable,
  wifi_status 56). Modules:

  - ``02:00:00:00:00:01`` NAModule1 ``Jardin "Süd" \\ Terrasse`` (double quote,
    backslash, non-ASCII): Temperature 12.3, Humidity 71, min 8.4 / max 15.9,
    temp_trend down, battery 5210 mV / 76 %, rf_status 64.
  - ``06:00:00:00:00:01`` NAModule2 "Anémomètre": WindStrength 14, WindAngle 250,
    GustStrength 31, GustAngle 245, max_wind_str 42, max_wind_angle 260.
  - ``05:00:00:00:00:01`` NAModule3 "Pluviomètre": Rain 0.303, sum_rain_1 1.212,
    sum_rain_24 7.8.
  - ``03:00:00:00:00:01`` NAModule4 "Chambre": Temperature 19.8, Humidity 52, CO2 780.
  - ``03:00:00:00:00:02`` NAModule4 "Chambre" (same name as the one above):
    Temperature 20.4, Humidity 49, CO2 540.

* Station ``70:ee:50:00:00:02`` without ``station_name`` (deprecated field absent),
  main module "Atelier" (Temperature 17.9). Modules:

  - ``02:00:00:00:00:02`` NAModule1 without ``module_name``: Temperature 11.7.
  - ``03:00:00:00:00:03`` NAModule4 "Cave": unreachable (``reachable`` false), no
    ``dashboard_data`` at all, last_seen 2 hours ago.
  - ``03:00:00:00:00:04`` NAModule4 "Grenier": stale, ``time_utc`` and ``last_seen``
    3 hours (10800 s) old, still ``reachable`` true; Temperature 24.6.

Home ``6a2b3c4d5e6f7a8b9c0d1e2f`` "Chalet" (Chamonix-Mont-Blanc, altitude 1035 m):

* Station ``70:ee:50:00:00:03``, ``station_name`` "Chalet", main module "Séjour"
  (Temperature 18.2). Modules:

  - ``02:00:00:00:00 03`` NAModule1 "Balcon" (id with a space): Temperature -3.5.
  - ``05:00:00:00:00:02`` NAModule3 "Pluie": never paired (rf_status 255,
    battery_vp 65535, battery_percent 0, firmware 255, last_seen 0, reachable false, no
    ``dashboard_data``).
  - ``09:00:00:00:00:01`` NAModule9 "Capteur expérimental": unknown type with odd
    fields (Luminosity, UV, a list and a nested object; no battery fields).

Home Coaches (``gethomecoachsdata``):

* ``70:ee:50:00:bb:01`` NHC, ``station_name`` and ``name`` "Chambre": Temperature 20.7,
  Humidity 48, CO2 650, Noise 35, Pressure 1015.8, AbsolutePressure 995.0,
  health_idx 1.
* ``70:ee:50:00:bb:02`` NHC, ``name`` "Salle de jeux" (no ``station_name``): Temperature
  22.1, CO2 1210, health_idx 2, with temp_trend and pressure_trend.

Favourite (only with ``get_favorites=true``): station ``70:ee:50:00:ff:01``
"Observatoire du Voisin" (home ``7b3c4d5e6f7a8b9c0d1e2f3a`` "Observatoire", Genève),
``favorite`` and ``read_only`` true, main module "Intérieur" (Temperature 22.0) and
outdoor module ``02:00:00:00:ff:01`` "Extérieur" (Temperature 9.6); no battery,
rf_status, firmware or wifi fields.

Sensor ages: fresh time fields are 180 to 420 s before the data time.

Netatmo Energy (``homesdata``, ``homestatus``): see :mod:`.energy`.

Stored history (``getmeasure``, ``getroommeasure``): see :mod:`.history` and
:func:`demo_history`. Every module, base station, Home Coach and Energy room with measured
fields has one (``Cave`` too, from its ``stored`` values, until it stopped reporting);
the never-paired "Pluie" and the Chalet's room (no status) have none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from .cadence import Cadence
from .energy import EnergyHome, demo_energy_homes, homesdata_home, homestatus_body
from .history import DAY, JSON, ROOM_TYPES, WEATHER_TYPES, History, Outage, SimSeries, today

STALE_AGE = 10800
CADENCE_LEAD = 180
"""Under a cadence, a device renders as at this many seconds after its upload, so that its
freshest measurement (180 s old in the accounts below) is the upload itself."""


@dataclass(frozen=True)
class Drift:
    """A reading oscillating around ``base``; exactly ``base`` on a frozen account."""

    base: float
    amplitude: float = 0.0
    period: float = 6 * 3600.0
    phase: float = 0.0
    digits: int = 1

    def value_at(self, t: float, frozen: bool) -> float | int:
        value = self.base
        if not frozen and self.amplitude:
            value += self.amplitude * math.sin(2 * math.pi * (t + self.phase) / self.period)
        if self.digits <= 0:
            return round(value)
        return round(value, self.digits)


@dataclass(frozen=True)
class Ago:
    """A Unix timestamp ``seconds`` before the data time."""

    seconds: int


@dataclass(frozen=True)
class SimModule:
    """A radio module of a station; ``dashboard=None`` means no ``dashboard_data``.
    ``stored`` (measure type -> ``Drift`` or constant) is what its history holds when its
    ``dashboard`` cannot say (default: the dashboard's measured fields)."""

    id: str
    type: str
    name: str | None
    attributes: Mapping[str, JSON] = field(default_factory=dict)
    dashboard: Mapping[str, JSON] | None = None
    stored: Mapping[str, JSON] | None = None


@dataclass(frozen=True)
class SimStation:
    """A weather station: its main (NAMain) module and its radio modules."""

    id: str
    home_id: str
    home_name: str | None
    station_name: str | None
    module_name: str | None
    place: Mapping[str, JSON]
    attributes: Mapping[str, JSON] = field(default_factory=dict)
    dashboard: Mapping[str, JSON] | None = None
    modules: tuple[SimModule, ...] = ()


@dataclass(frozen=True)
class HomeCoach:
    """A Healthy Home Coach (NHC) device."""

    id: str
    name: str
    station_name: str | None
    place: Mapping[str, JSON]
    attributes: Mapping[str, JSON] = field(default_factory=dict)
    dashboard: Mapping[str, JSON] | None = None


@dataclass(frozen=True)
class Account:
    """Everything a Netatmo user's data endpoints return."""

    user: Mapping[str, JSON]
    stations: tuple[SimStation, ...] = ()
    favorites: tuple[SimStation, ...] = ()
    home_coaches: tuple[HomeCoach, ...] = ()
    frozen: bool = False
    energy_homes: tuple[EnergyHome, ...] = ()
    cadence: Cadence | None = None
    history: History = field(default_factory=History)

    def frozen_copy(self) -> Account:
        return replace(self, frozen=True)

    def with_cadence(self, cadence: Cadence) -> Account:
        """The same account whose devices upload on ``cadence``: each device shows its
        latest visible upload rather than the data time."""
        return replace(self, cadence=cadence)

    def device_ids(self) -> tuple[str, ...]:
        """The user's own stations and Home Coaches (not the favourites)."""
        return tuple(s.id for s in self.stations) + tuple(c.id for c in self.home_coaches)

    def _device_time(self, device_id: str, now: float) -> tuple[int, int | None]:
        """The data time a device renders at, and its ``last_status_store`` if a cadence
        decides it."""
        upload = None if self.cadence is None else self.cadence.latest_visible(device_id, now)
        if upload is None:
            return int(now), None
        return upload.stored_at + CADENCE_LEAD, upload.stored_at

    def find_station(self, device_id: str) -> SimStation | None:
        for station in (*self.stations, *self.favorites):
            if station.id == device_id:
                return station
        return None

    def weather_series(self, device_id: str, module_id: str | None) -> SimSeries | None:
        """What ``getmeasure`` reads for a device (``module_id`` None or the device's own
        id) or one of its modules; None for a device or module not in the account."""
        own = module_id in (None, "", device_id)
        station = self.find_station(device_id)
        if station is not None:
            if own:
                return _series(device_id, device_id, "read_station", station.dashboard)
            for module in station.modules:
                if module.id == module_id:
                    values = module.stored
                    if values is None:
                        return _series(module.id, device_id, "read_station", module.dashboard)
                    return SimSeries(module.id, device_id, "read_station", values)
            return None
        for coach in self.home_coaches:
            if coach.id == device_id and own:
                return _series(device_id, device_id, "read_homecoach", coach.dashboard)
        return None

    def room_series(self, home_id: str, room_id: str) -> SimSeries | None:
        """What ``getroommeasure`` reads for a room; None for a home or room not in the
        account."""
        for home in self.energy_homes:
            for room in home.rooms if home.id == home_id else ():
                if room.id == room_id:
                    values = {kind: room.status[key] for kind, key in ROOM_TYPES.items()
                              if key in room.status}
                    return SimSeries(room.id, home.id, "read_thermostat", values)
        return None

    def stations_body(
        self, now: float, *, favorites: bool = False, device_id: str | None = None
    ) -> dict[str, JSON]:
        """The ``body`` of a ``getstationsdata`` answer at data time ``now``."""
        stations: list[tuple[SimStation, bool]] = [(s, False) for s in self.stations]
        if favorites:
            stations += [(s, True) for s in self.favorites]
        if device_id is not None:
            stations = [(s, fav) for s, fav in stations if s.id == device_id]
        devices = [_stored(_render_station(s, fav, at, self.frozen), stored)
                   for s, fav in stations
                   for at, stored in [self._device_time(s.id, now)]]
        return {"devices": devices, "user": _render(self.user, int(now), self.frozen)}

    def homecoaches_body(self, now: float) -> dict[str, JSON]:
        """The ``body`` of a ``gethomecoachsdata`` answer at data time ``now``."""
        devices = [_stored(_render_homecoach(c, at, self.frozen), stored)
                   for c in self.home_coaches
                   for at, stored in [self._device_time(c.id, now)]]
        return {"devices": devices, "user": _render(self.user, int(now), self.frozen)}

    def homesdata_body(self, now: int) -> dict[str, JSON]:
        """The ``body`` of a ``homesdata`` answer (Netatmo Energy) at data time ``now``."""
        homes = [homesdata_home(home) for home in self.energy_homes]
        return {"homes": homes, "user": _render(self.user, now, self.frozen)}

    def homestatus_body(self, home_id: str, now: int) -> dict[str, JSON] | None:
        """The ``body`` of ``homestatus`` for one home; None for a home not in the account."""
        for home in self.energy_homes:
            if home.id == home_id:
                return homestatus_body(home, lambda value: _render(value, now, self.frozen))
        return None


def _series(key: str, device_id: str, scope: str, dashboard: Mapping[str, JSON] | None
            ) -> SimSeries:
    values = {kind: dashboard[key] for kind, key in WEATHER_TYPES.items()
              if dashboard is not None and key in dashboard}
    return SimSeries(key, device_id, scope, values)


def _stored(device: dict[str, JSON], last_status_store: int | None) -> dict[str, JSON]:
    if last_status_store is not None:
        device["last_status_store"] = last_status_store
    return device


def _render(value: JSON, now: int, frozen: bool) -> JSON:
    if isinstance(value, Drift):
        return value.value_at(now, frozen)
    if isinstance(value, Ago):
        return now - value.seconds
    if isinstance(value, Mapping):
        return {k: _render(v, now, frozen) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render(v, now, frozen) for v in value]
    return value


def _render_module(module: SimModule, now: int, frozen: bool) -> dict[str, JSON]:
    out: dict[str, JSON] = {"_id": module.id, "type": module.type}
    if module.name is not None:
        out["module_name"] = module.name
    out.update(_render(module.attributes, now, frozen))
    if module.dashboard is not None:
        out["dashboard_data"] = _render(module.dashboard, now, frozen)
        out["data_type"] = _data_type(module.dashboard)
    return out


def _render_station(station: SimStation, favorite: bool, now: int, frozen: bool) -> dict[str, JSON]:
    out: dict[str, JSON] = {"_id": station.id, "type": "NAMain"}
    if station.station_name is not None:
        out["station_name"] = station.station_name
    if station.module_name is not None:
        out["module_name"] = station.module_name
    out["home_id"] = station.home_id
    if station.home_name is not None:
        out["home_name"] = station.home_name
    out.update(_render(station.attributes, now, frozen))
    out["place"] = _render(station.place, now, frozen)
    if station.dashboard is not None:
        out["dashboard_data"] = _render(station.dashboard, now, frozen)
        out["data_type"] = _data_type(station.dashboard)
    if favorite:
        out["favorite"] = True
        out["read_only"] = True
    out["modules"] = [_render_module(m, now, frozen) for m in station.modules]
    return out


def _render_homecoach(coach: HomeCoach, now: int, frozen: bool) -> dict[str, JSON]:
    out: dict[str, JSON] = {"_id": coach.id, "type": "NHC", "name": coach.name}
    if coach.station_name is not None:
        out["station_name"] = coach.station_name
    out.update(_render(coach.attributes, now, frozen))
    out["place"] = _render(coach.place, now, frozen)
    if coach.dashboard is not None:
        out["dashboard_data"] = _render(coach.dashboard, now, frozen)
        out["data_type"] = _data_type(coach.dashboard)
    return out


_DATA_TYPES = {
    "Temperature": "Temperature",
    "CO2": "CO2",
    "Humidity": "Humidity",
    "Noise": "Noise",
    "Pressure": "Pressure",
    "health_idx": "health_idx",
    "Rain": "Rain",
    "WindStrength": "Wind",
}


def _data_type(dashboard: Mapping[str, JSON]) -> list[str]:
    return [name for key, name in _DATA_TYPES.items() if key in dashboard]


_LYON = {
    "altitude": 173,
    "city": "Lyon",
    "country": "FR",
    "timezone": "Europe/Paris",
    "location": [4.8357, 45.764],
}
_CHAMONIX = {
    "altitude": 1035,
    "city": "Chamonix-Mont-Blanc",
    "country": "FR",
    "timezone": "Europe/Paris",
    "location": [6.8694, 45.9237],
}
_GENEVE = {
    "altitude": 375,
    "city": "Genève",
    "country": "CH",
    "timezone": "Europe/Zurich",
    "location": [6.1432, 46.2044],
}

_MAISON = "5f1e3a2b4c5d6e7f8a9b0c1d"
_CHALET = "6a2b3c4d5e6f7a8b9c0d1e2f"
_OBSERVATOIRE = "7b3c4d5e6f7a8b9c0d1e2f3a"


def _indoor_dashboard(
    age: int, temp: float, hum: float, co2: float, noise: float, pressure: float, absolute: float
) -> dict[str, JSON]:
    return {
        "time_utc": Ago(age),
        "Temperature": Drift(temp, 0.6, phase=age),
        "CO2": Drift(co2, 80, digits=0, phase=age),
        "Humidity": Drift(hum, 3, digits=0, phase=age),
        "Noise": Drift(noise, 4, digits=0, phase=age),
        "Pressure": Drift(pressure, 1.5, phase=age),
        "AbsolutePressure": Drift(absolute, 1.5, phase=age),
        "min_temp": round(temp - 1.4, 1),
        "max_temp": round(temp + 1.3, 1),
        "date_min_temp": Ago(age + 6 * 3600),
        "date_max_temp": Ago(age + 2 * 3600),
        "temp_trend": "up",
        "pressure_trend": "stable",
    }


def _outdoor_dashboard(
    age: int, temp: float, hum: float, tmin: float, tmax: float, trend: str
) -> dict[str, JSON]:
    return {
        "time_utc": Ago(age),
        "Temperature": Drift(temp, 2.5, phase=age),
        "Humidity": Drift(hum, 8, digits=0, phase=age),
        "min_temp": tmin,
        "max_temp": tmax,
        "date_min_temp": Ago(age + 5 * 3600),
        "date_max_temp": Ago(age + 3600),
        "temp_trend": trend,
    }


def _module4_dashboard(age: int, temp: float, hum: float, co2: float) -> dict[str, JSON]:
    return {
        "time_utc": Ago(age),
        "Temperature": Drift(temp, 0.5, phase=age),
        "CO2": Drift(co2, 120, digits=0, phase=age),
        "Humidity": Drift(hum, 3, digits=0, phase=age),
        "min_temp": round(temp - 1.0, 1),
        "max_temp": round(temp + 0.8, 1),
        "date_min_temp": Ago(age + 4 * 3600),
        "date_max_temp": Ago(age + 7200),
        "temp_trend": "stable",
    }


def _radio(
    age: int, battery_vp: int, battery_percent: int, rf: int, firmware: int = 50
) -> dict[str, JSON]:
    return {
        "last_setup": 1_600_000_000,
        "battery_percent": battery_percent,
        "battery_vp": battery_vp,
        "rf_status": rf,
        "firmware": firmware,
        "reachable": True,
        "last_seen": Ago(age),
        "last_message": Ago(age - 60),
    }


def _wifi(age: int, wifi: int, firmware: int = 181) -> dict[str, JSON]:
    return {
        "date_setup": 1_590_000_000,
        "last_setup": 1_590_000_000,
        "firmware": firmware,
        "last_upgrade": 1_690_000_000,
        "wifi_status": wifi,
        "reachable": True,
        "co2_calibrating": False,
        "last_status_store": Ago(age - 30),
    }


DEMO_USER: Mapping[str, JSON] = {
    "mail": "demo@example.com",
    "administrative": {
        "country": "FR",
        "reg_locale": "fr-FR",
        "lang": "fr",
        "unit": 1,
        "windunit": 1,
        "pressureunit": 2,
        "feel_like_algo": 0,
    },
}

DEMO_STATIONS: tuple[SimStation, ...] = (
    SimStation(
        id="70:ee:50:00:00:01",
        home_id=_MAISON,
        home_name="Maison",
        station_name="Maison (Lyon)",
        module_name="Salon",
        place=_LYON,
        attributes=_wifi(240, 56),
        dashboard=_indoor_dashboard(240, 21.5, 45, 620, 38, 1016.2, 995.4),
        modules=(
            SimModule(
                id="02:00:00:00:00:01",
                type="NAModule1",
                name='Jardin "Süd" \\ Terrasse',
                attributes=_radio(300, 5210, 76, 64),
                dashboard=_outdoor_dashboard(300, 12.3, 71, 8.4, 15.9, "down"),
            ),
            SimModule(
                id="06:00:00:00:00:01",
                type="NAModule2",
                name="Anémomètre",
                attributes=_radio(300, 5350, 88, 72),
                dashboard={
                    "time_utc": Ago(300),
                    "WindStrength": Drift(14, 6, period=1800, digits=0),
                    "WindAngle": Drift(250, 20, period=2400, digits=0),
                    "GustStrength": Drift(31, 9, period=1800, digits=0),
                    "GustAngle": Drift(245, 25, period=2400, digits=0),
                    "max_wind_str": 42,
                    "max_wind_angle": 260,
                    "date_max_wind_str": Ago(300 + 4 * 3600),
                },
            ),
            SimModule(
                id="05:00:00:00:00:01",
                type="NAModule3",
                name="Pluviomètre",
                attributes=_radio(300, 5050, 61, 80),
                dashboard={
                    "time_utc": Ago(300),
                    "Rain": 0.303,
                    "sum_rain_1": 1.212,
                    "sum_rain_24": 7.8,
                },
            ),
            SimModule(
                id="03:00:00:00:00:01",
                type="NAModule4",
                name="Chambre",
                attributes=_radio(360, 5400, 72, 58),
                dashboard=_module4_dashboard(360, 19.8, 52, 780),
            ),
            SimModule(
                id="03:00:00:00:00:02",
                type="NAModule4",
                name="Chambre",
                attributes=_radio(420, 4950, 44, 86),
                dashboard=_module4_dashboard(420, 20.4, 49, 540),
            ),
        ),
    ),
    SimStation(
        id="70:ee:50:00:00:02",
        home_id=_MAISON,
        home_name="Maison",
        station_name=None,
        module_name="Atelier",
        place=_LYON,
        attributes=_wifi(200, 71),
        dashboard=_indoor_dashboard(200, 17.9, 58, 890, 52, 1016.0, 995.2),
        modules=(
            SimModule(
                id="02:00:00:00:00:02",
                type="NAModule1",
                name=None,
                attributes=_radio(260, 5480, 98, 70),
                dashboard=_outdoor_dashboard(260, 11.7, 74, 7.9, 14.8, "stable"),
            ),
            SimModule(
                id="03:00:00:00:00:03",
                type="NAModule4",
                name="Cave",
                attributes={**_radio(7200, 4400, 8, 90), "reachable": False},
                dashboard=None,
                stored={"temperature": Drift(12.5, 0.8, phase=900),
                        "humidity": Drift(78, 3, digits=0), "co2": Drift(480, 40, digits=0)},
            ),
            SimModule(
                id="03:00:00:00:00:04",
                type="NAModule4",
                name="Grenier",
                attributes=_radio(STALE_AGE, 5100, 55, 84),
                dashboard=_module4_dashboard(STALE_AGE, 24.6, 38, 450),
            ),
        ),
    ),
    SimStation(
        id="70:ee:50:00:00:03",
        home_id=_CHALET,
        home_name="Chalet",
        station_name="Chalet",
        module_name="Séjour",
        place=_CHAMONIX,
        attributes=_wifi(180, 86),
        dashboard=_indoor_dashboard(180, 18.2, 41, 510, 33, 1018.4, 897.6),
        modules=(
            SimModule(
                id="02:00:00:00:00 03",
                type="NAModule1",
                name="Balcon",
                attributes=_radio(240, 4600, 22, 78),
                dashboard=_outdoor_dashboard(240, -3.5, 83, -8.1, 1.2, "up"),
            ),
            SimModule(
                id="05:00:00:00:00:02",
                type="NAModule3",
                name="Pluie",
                attributes={
                    "last_setup": 1_600_000_000,
                    "battery_percent": 0,
                    "battery_vp": 65535,
                    "rf_status": 255,
                    "firmware": 255,
                    "reachable": False,
                    "last_seen": 0,
                },
                dashboard=None,
            ),
            SimModule(
                id="09:00:00:00:00:01",
                type="NAModule9",
                name="Capteur expérimental",
                attributes={
                    "firmware": "beta-3",
                    "reachable": True,
                    "last_seen": Ago(300),
                    "calibration": {"offset": [0.1, -0.2], "mode": "auto"},
                },
                dashboard={
                    "time_utc": Ago(300),
                    "Luminosity": Drift(812, 200, digits=0),
                    "UV": 3,
                    "spectrum": [410, 520, 680],
                    "Temperature": 19.0,
                },
            ),
        ),
    ),
)

DEMO_FAVORITES: tuple[SimStation, ...] = (
    SimStation(
        id="70:ee:50:00:ff:01",
        home_id=_OBSERVATOIRE,
        home_name="Observatoire",
        station_name="Observatoire du Voisin",
        module_name="Intérieur",
        place=_GENEVE,
        attributes={"reachable": True, "last_status_store": Ago(200)},
        dashboard={
            "time_utc": Ago(240),
            "Temperature": Drift(22.0, 0.4),
            "CO2": Drift(700, 60, digits=0),
            "Humidity": Drift(44, 2, digits=0),
            "Noise": Drift(40, 3, digits=0),
            "Pressure": Drift(1015.1, 1.0),
            "AbsolutePressure": Drift(970.5, 1.0),
        },
        modules=(
            SimModule(
                id="02:00:00:00:ff:01",
                type="NAModule1",
                name="Extérieur",
                attributes={"reachable": True, "last_seen": Ago(260)},
                dashboard={
                    "time_utc": Ago(260),
                    "Temperature": Drift(9.6, 2.0),
                    "Humidity": Drift(66, 6, digits=0),
                },
            ),
        ),
    ),
)

DEMO_HOME_COACHES: tuple[HomeCoach, ...] = (
    HomeCoach(
        id="70:ee:50:00:bb:01",
        name="Chambre",
        station_name="Chambre",
        place=_LYON,
        attributes=_wifi(210, 60, firmware=58),
        dashboard={
            "time_utc": Ago(210),
            "Temperature": Drift(20.7, 0.5),
            "CO2": Drift(650, 90, digits=0),
            "Humidity": Drift(48, 3, digits=0),
            "Noise": Drift(35, 4, digits=0),
            "Pressure": Drift(1015.8, 1.2),
            "AbsolutePressure": Drift(995.0, 1.2),
            "health_idx": 1,
            "min_temp": 19.6,
            "max_temp": 21.4,
            "date_min_temp": Ago(210 + 5 * 3600),
            "date_max_temp": Ago(210 + 3600),
        },
    ),
    HomeCoach(
        id="70:ee:50:00:bb:02",
        name="Salle de jeux",
        station_name=None,
        place=_LYON,
        attributes=_wifi(330, 72, firmware=58),
        dashboard={
            "time_utc": Ago(330),
            "Temperature": Drift(22.1, 0.7),
            "CO2": Drift(1210, 150, digits=0),
            "Humidity": Drift(39, 4, digits=0),
            "Noise": Drift(55, 6, digits=0),
            "Pressure": Drift(1015.9, 1.2),
            "AbsolutePressure": Drift(995.1, 1.2),
            "health_idx": 2,
            "min_temp": 20.3,
            "max_temp": 23.0,
            "date_min_temp": Ago(330 + 6 * 3600),
            "date_max_temp": Ago(330 + 1800),
            "temp_trend": "up",
            "pressure_trend": "down",
        },
    ),
)


ATELIER = "70:ee:50:00:00:02"
CAVE = "03:00:00:00:00:03"


def demo_history(anchor: int | None = None, *, days: int = 366) -> History:
    """The demo account's stored history (``anchor``: default midnight UTC today): ``days``
    of readings, station "Atelier" offline from 02:00 to 07:30 UTC three days before the
    anchor, and module "Cave" reporting nothing after 13:00 UTC two days before it."""
    anchor = today() if anchor is None else anchor
    outage = Outage(ATELIER, anchor - 3 * DAY + 2 * 3600, anchor - 3 * DAY + 7 * 3600 + 1800)
    return History(anchor=anchor, days=days, outages=(outage,),
                   stopped={CAVE: anchor - 2 * DAY + 13 * 3600})


def demo_account(*, frozen: bool = False, history: History | None = None) -> Account:
    """The demo account described in this module's docstring, with
    :func:`demo_history` unless ``history`` is given."""
    return Account(
        user=DEMO_USER,
        stations=DEMO_STATIONS,
        favorites=DEMO_FAVORITES,
        home_coaches=DEMO_HOME_COACHES,
        frozen=frozen,
        energy_homes=demo_energy_homes(lambda base, amplitude: Drift(base, amplitude), Ago),
        history=demo_history() if history is None else history,
    )


def ten_module_account(*, frozen: bool = False, history: History | None = None) -> Account:
    """A year of a ten-module account, for the history benchmark: the demo's first
    station (base station and five modules), "Atelier" with its outdoor module, and the
    two Home Coaches; :func:`demo_history` (a year, Atelier's outage) unless ``history``
    is given. No favourites, no Energy homes."""
    atelier = replace(DEMO_STATIONS[1], modules=DEMO_STATIONS[1].modules[:1])
    return Account(
        user=DEMO_USER,
        stations=(DEMO_STATIONS[0], atelier),
        home_coaches=DEMO_HOME_COACHES,
        frozen=frozen,
        history=demo_history() if history is None else history,
    )


def empty_account() -> Account:
    """An account without any device (a new user, or a sold station)."""
    return Account(user=DEMO_USER)


_LARGE_MODULE_TYPES: Sequence[str] = ("NAModule1", "NAModule2", "NAModule3", "NAModule4")


def _large_module(station_index: int, module_index: int) -> SimModule:
    kind = _LARGE_MODULE_TYPES[module_index % len(_LARGE_MODULE_TYPES)]
    age = 120 + (station_index * 7 + module_index * 13) % 480
    dashboard: dict[str, JSON]
    if kind == "NAModule1":
        dashboard = _outdoor_dashboard(age, 10.0 + module_index, 70, 5.0, 15.0, "stable")
    elif kind == "NAModule2":
        dashboard = {
            "time_utc": Ago(age),
            "WindStrength": Drift(10, 5, digits=0, phase=age),
            "WindAngle": Drift(180, 90, digits=0, phase=age),
            "GustStrength": Drift(20, 8, digits=0, phase=age),
            "GustAngle": Drift(180, 90, digits=0, phase=age),
            "max_wind_str": 35,
            "max_wind_angle": 200,
            "date_max_wind_str": Ago(age + 3600),
        }
    elif kind == "NAModule3":
        dashboard = {"time_utc": Ago(age), "Rain": 0.101, "sum_rain_1": 0.404, "sum_rain_24": 2.1}
    else:
        dashboard = _module4_dashboard(age, 19.0 + module_index / 10, 50, 600)
    return SimModule(
        id=f"{module_index + 2:02x}:00:00:00:{station_index // 256:02x}:{station_index % 256:02x}",
        type=kind,
        name=f"Module {station_index:03d}-{module_index}",
        attributes=_radio(age, 5300, 80, 70),
        dashboard=dashboard,
    )


def _large_station(index: int, modules: int, favorite: bool) -> SimStation:
    prefix = "70:ee:51" if favorite else "70:ee:50"
    station_id = f"{prefix}:01:{index // 256:02x}:{index % 256:02x}"
    home = f"{'fav' if favorite else 'home'}{index:021d}"
    module_list = tuple(_large_module(index, m) for m in range(modules))
    if favorite:
        module_list = tuple(
            replace(m, id="f" + m.id[1:], attributes={"reachable": True}) for m in module_list
        )
    return SimStation(
        id=station_id,
        home_id=home,
        home_name=f"{'Favourite' if favorite else 'Home'} {index:03d}",
        station_name=f"{'Favourite' if favorite else 'Station'} {index:03d}",
        module_name=f"Indoor {index:03d}",
        place=_LYON,
        attributes={"reachable": True} if favorite else _wifi(200, 60),
        dashboard=_indoor_dashboard(200, 21.0, 45, 600, 40, 1015.0, 995.0),
        modules=module_list,
    )


def large_account(
    stations: int = 50, modules_per_station: int = 6, favorites: int = 10, *, frozen: bool = False
) -> Account:
    """A big account for benchmarks: regular, healthy stations and favourites."""
    return Account(
        user=DEMO_USER,
        stations=tuple(_large_station(i, modules_per_station, False) for i in range(stations)),
        favorites=tuple(_large_station(i, modules_per_station, True) for i in range(favorites)),
        home_coaches=DEMO_HOME_COACHES,
        frozen=frozen,
    )


def quirks_account(*, frozen: bool = False) -> Account:
    """Shapes seen in answers captured from real accounts by other projects: a station
    without ``home_name`` whose base station has no ``module_name`` and reads a CO2 of 0,
    and a 2017 Home Coach with ``name`` but no ``station_name`` and no Temperature."""
    return Account(
        user=DEMO_USER,
        stations=(
            SimStation(
                id="70:ee:50:00:0a:01",
                home_id="8c4d5e6f7a8b9c0d1e2f3a4b",
                home_name=None,
                station_name="Sans maison",
                module_name=None,
                place=_LYON,
                attributes=_wifi(200, 60),
                dashboard={**_indoor_dashboard(200, 19.5, 50, 600, 40, 1013.0, 993.0),
                           "CO2": 0},
            ),
        ),
        home_coaches=(
            HomeCoach(
                id="70:ee:50:00:bb:0a",
                name="Bureau",
                station_name=None,
                place=_GENEVE,
                attributes=_wifi(240, 60, firmware=45),
                dashboard={
                    "time_utc": Ago(240),
                    "CO2": Drift(820, 60, digits=0),
                    "Humidity": Drift(41, 2, digits=0),
                    "Noise": Drift(44, 3, digits=0),
                    "Pressure": Drift(1013.4, 1.0),
                    "AbsolutePressure": Drift(968.8, 1.0),
                    "health_idx": 0,
                },
            ),
        ),
        frozen=frozen,
    )
