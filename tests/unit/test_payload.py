"""Netatmo JSON to domain objects: whatever real accounts send must not break parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from netatmo_exporter.adapters.netatmo.payload import parse_devices
from netatmo_exporter.domain.errors import BadResponse
from netatmo_exporter.simulator import demo_account


def answer(*devices: Any) -> dict[str, Any]:
    return {"body": {"devices": list(devices), "user": {}}, "status": "ok"}


def station(**extra: Any) -> dict[str, Any]:
    return {"_id": "70:ee:50:00:00:01", "type": "NAMain", "module_name": "Salon",
            "home_name": "Maison", **extra}


@pytest.mark.parametrize("payload", [
    None, [], "ok", {"status": "ok"}, {"body": None}, {"body": []},
    {"body": {"devices": None}}, {"body": {"devices": {"a": 1}}}, {"body": {}},
])
def test_malformed_answers_are_bad_responses(payload: object) -> None:
    with pytest.raises(BadResponse):
        parse_devices(payload, "station")


def test_empty_device_list() -> None:
    assert parse_devices(answer(), "station") == ()


def test_non_object_entries_and_entries_without_id_are_skipped() -> None:
    stations = parse_devices(
        answer(1, "x", None, [], {"type": "NAMain"}, station(modules=[7, {"type": "NAModule1"},
               {"_id": "02:00:00:00:00:01", "type": "NAModule1"}])), "station")

    assert [s.id for s in stations] == ["70:ee:50:00:00:01"]
    assert [m.id for m in stations[0].modules] == ["02:00:00:00:00:01"]


def test_missing_fields_become_none() -> None:
    (parsed,) = parse_devices(answer({"_id": "x"}), "station")

    assert parsed.name is None and parsed.home_name is None
    assert parsed.main.type == "unknown"
    assert parsed.main.readings is None
    assert parsed.modules == ()
    assert parsed.label == "id-x"


def test_absent_or_odd_dashboard_data() -> None:
    (parsed,) = parse_devices(answer(station(modules=[
        {"_id": "m1", "type": "NAModule4", "reachable": False},
        {"_id": "m2", "type": "NAModule4", "dashboard_data": []},
        {"_id": "m3", "type": "NAModule1",
         "dashboard_data": {"time_utc": 1, "Temperature": "warm", "Humidity": True,
                            "temp_trend": "sideways"}},
    ])), "station")

    m1, m2, m3 = parsed.modules
    assert m1.readings is None and m1.reachable is False
    assert m2.readings is None
    assert m3.readings is not None
    assert (m3.readings.temperature, m3.readings.humidity, m3.readings.temp_trend) == (
        None, None, None)


def test_non_finite_numbers_are_dropped() -> None:
    payload = json.loads('{"body": {"devices": [{"_id": "s", "dashboard_data": '
                         '{"time_utc": 5, "Temperature": NaN, "CO2": Infinity}}]}}')

    (parsed,) = parse_devices(payload, "station")

    assert parsed.main.readings is not None
    assert parsed.main.readings.temperature is None
    assert parsed.main.readings.co2 is None


def test_unknown_module_types_are_kept_with_what_they_share() -> None:
    (parsed,) = parse_devices(answer(station(modules=[
        {"_id": "09:00", "type": "NAModule9", "module_name": "Exp", "firmware": "beta-3",
         "dashboard_data": {"time_utc": 100, "Temperature": 19.0, "Luminosity": 800,
                            "spectrum": [1, 2], "nested": {"a": 1}}},
    ])), "station")

    (module,) = parsed.modules
    assert module.type == "NAModule9"
    assert module.firmware is None
    assert module.readings is not None and module.readings.temperature == 19.0


def test_never_paired_sentinels() -> None:
    (parsed,) = parse_devices(answer(station(modules=[
        {"_id": "05:00", "type": "NAModule3", "module_name": "Pluie", "rf_status": 255,
         "battery_vp": 65535, "battery_percent": 0, "last_seen": 0, "reachable": False},
    ])), "station")

    (module,) = parsed.modules
    assert module.never_paired
    assert module.readings is None


def test_trends_and_place() -> None:
    (parsed,) = parse_devices(answer(station(
        place={"altitude": 173, "city": "Lyon", "location": [4.8, 45.7]},
        dashboard_data={"time_utc": 1, "temp_trend": "up", "pressure_trend": "down"})),
        "station")

    assert parsed.place.city == "Lyon"
    assert (parsed.place.longitude, parsed.place.latitude) == (4.8, 45.7)
    assert parsed.main.readings is not None
    assert (parsed.main.readings.temp_trend, parsed.main.readings.pressure_trend) == (1, -1)


def test_main_module_last_seen_is_last_status_store() -> None:
    (parsed,) = parse_devices(answer(station(last_status_store=1234, wifi_status=56)),
                              "station")

    assert parsed.main.last_seen == 1234
    assert parsed.main.wifi_status == 56


def test_home_coach_takes_its_name_from_name() -> None:
    (coach,) = parse_devices(answer({"_id": "70:ee:50:00:bb:02", "type": "NHC",
                                     "name": "Salle de jeux"}), "homecoach")

    assert coach.kind == "homecoach"
    assert coach.name == "Salle de jeux"
    assert coach.main.name == "Salle de jeux"


def test_the_whole_demo_account_parses() -> None:
    account = demo_account(frozen=True)
    body = account.stations_body(1_700_000_000, favorites=True)

    stations = parse_devices({"body": body, "status": "ok"}, "station")

    assert len(stations) == 4
    assert [len(s.modules) for s in stations] == [5, 3, 3, 1]
    assert stations[-1].favorite
