"""The simulated cloud's stored history (getmeasure, getroommeasure) over real HTTP."""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from netatmo_exporter.simulator import (
    FakeNetatmoCloud,
    History,
    demo_account,
    demo_history,
    scaled_rate_limits,
    ten_module_account,
)
from netatmo_exporter.simulator.history import DAY, MAX_LIMIT, bucket_start
from tests.unit.fakes import FakeClock

ALL = ("read_station", "read_homecoach", "read_thermostat")
SALON = "70:ee:50:00:00:01"
JARDIN = "02:00:00:00:00:01"
ATELIER = "70:ee:50:00:00:02"
ATELIER_OUTDOOR = "02:00:00:00:00:02"
CAVE = "03:00:00:00:00:03"
COACH = "70:ee:50:00:bb:01"
MAISON = "5f1e3a2b4c5d6e7f8a9b0c1d"
CHALET = "6a2b3c4d5e6f7a8b9c0d1e2f"
SALON_ROOM = "2255031728"
ANCHOR = 1_796_342_400
"""A fixed midnight UTC (2026-12-03) so that every expectation below is reproducible."""
NOW = ANCHOR + 9 * 3600

Readings = list[tuple[int, list[Any]]]


@pytest.fixture
def cloud() -> Iterator[FakeNetatmoCloud]:
    account = demo_account(history=demo_history(ANCHOR))
    with FakeNetatmoCloud(account=account, clock=FakeClock(NOW)) as running:
        yield running


def get(cloud: FakeNetatmoCloud, path: str, token: str, **params: object
        ) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{cloud.base_url}/api/{path}?{urlencode(params)}",
        headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), json.loads(error.read())


def token(cloud: FakeNetatmoCloud, scope: tuple[str, ...] = ALL) -> str:
    return str(cloud.issue_tokens(scope)["access_token"])


def expand(body: Any) -> Readings:
    """Either answer shape as a list of (time, values)."""
    if isinstance(body, dict):
        return [(int(stamp), values) for stamp, values in body.items()]
    found: Readings = []
    for run in body:
        step = run.get("step_time", 0)
        assert len(run["value"]) == 1 or step > 0
        found += [(run["beg_time"] + i * step, values) for i, values in enumerate(run["value"])]
    return found


def expected(cloud: FakeNetatmoCloud, device: str, module: str | None, types: tuple[str, ...],
             begin: int, end: int) -> Readings:
    account = cloud.account
    series = account.weather_series(device, module)
    assert series is not None
    return list(account.history.readings(series, types, begin, end))


def measure(cloud: FakeNetatmoCloud, access: str, **params: object) -> Readings:
    status, answer = get(cloud, "getmeasure", access, **params)
    assert status == 200, answer
    return expand(answer["body"])


def test_every_reading_about_five_minutes_apart_at_irregular_times(
        cloud: FakeNetatmoCloud) -> None:
    access = token(cloud)
    types = ("temperature", "humidity", "co2", "pressure", "noise")
    begin = NOW - DAY
    runs = get(cloud, "getmeasure", access, device_id=SALON, scale="max",
               type=",".join(types), date_begin=begin)[1]["body"]
    flat = get(cloud, "getmeasure", access, device_id=SALON, scale="max",
               type="Temperature,HUMIDITY,co2,Pressure,noise", date_begin=begin,
               optimize="false")[1]["body"]

    readings = expand(runs)
    assert readings == expand(flat) == expected(cloud, SALON, None, types, begin, NOW)
    assert len(readings) == 288
    steps = [b[0] - a[0] for a, b in itertools.pairwise(readings)]
    assert min(steps) >= 288 and max(steps) <= 312 and len(set(steps)) > 5
    assert 20 < len(runs) < 200
    assert all(len(run["value"]) > 1 or "step_time" not in run for run in runs)
    assert all(isinstance(values[0], float) and 19 < values[0] < 24 for _, values in readings
               if values[0] is not None)


def test_limit_paging_and_inclusive_bounds(cloud: FakeNetatmoCloud) -> None:
    access = token(cloud)
    begin = NOW - 5 * DAY
    everything = expected(cloud, SALON, JARDIN, ("temperature", "humidity"), begin, NOW)
    pages: list[Readings] = []
    start = begin
    while len(pages) < 10:
        page = measure(cloud, access, device_id=SALON, module_id=JARDIN, scale="max",
                       type="temperature,humidity", date_begin=start, date_end=NOW,
                       limit=MAX_LIMIT)
        if not page:
            break
        pages.append(page)
        start = page[-1][0] + 1

    assert [len(page) for page in pages] == [1024, 416]
    assert [reading for page in pages for reading in page] == everything
    first, second = everything[0][0], everything[1][0]
    assert [t for t, _ in measure(cloud, access, device_id=SALON, module_id=JARDIN,
                                  scale="max", type="temperature", date_begin=first,
                                  date_end=second)] == [first, second]
    assert measure(cloud, access, device_id=SALON, module_id=JARDIN, scale="max",
                   type="temperature", date_begin=first + 1, date_end=second - 1) == []
    assert get(cloud, "getmeasure", access, device_id=SALON, scale="max", type="temperature",
               date_begin=first, date_end=first - 1)[1]["body"] == []
    three = get(cloud, "getmeasure", access, device_id=SALON, module_id=JARDIN, scale="max",
                type="temperature", date_begin=NOW - 3600, optimize="false", limit=3)[1]["body"]
    assert list(three) == [str(t) for t, _ in everything if t >= NOW - 3600][:3]


def test_no_reading_after_now_nor_before_the_history(cloud: FakeNetatmoCloud) -> None:
    access = token(cloud)
    history = cloud.account.history
    late = measure(cloud, access, device_id=SALON, scale="max", type="temperature",
                   date_begin=NOW - 600, date_end=NOW + DAY)
    early = measure(cloud, access, device_id=SALON, scale="max", type="temperature",
                    date_begin=0, limit=2)

    assert late and all(t <= NOW for t, _ in late)
    assert [t for t, _ in early] == [t for t, _ in expected(
        cloud, SALON, None, ("temperature",), history.start, history.start + 600)][:2]
    assert history.start <= early[0][0] < history.start + 10
    assert history.start == ANCHOR - 366 * DAY


def test_a_station_offline_leaves_a_hole_in_all_its_modules(cloud: FakeNetatmoCloud) -> None:
    access = token(cloud)
    (outage,) = cloud.account.history.outages
    assert outage.device_id == ATELIER and outage.end - outage.start == 5.5 * 3600
    for module in (None, ATELIER_OUTDOOR):
        times = [t for t, _ in measure(cloud, access, device_id=ATELIER,
                                       module_id=module or "", scale="max",
                                       type="temperature", date_begin=outage.start - 3600,
                                       date_end=outage.end + 3600)]
        inside = [t for t in times if outage.start <= t < outage.end]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert inside == [] and len(times) == 24
        assert max(gaps) > 5 * 3600
    salon = measure(cloud, access, device_id=SALON, scale="max", type="temperature",
                    date_begin=outage.start, date_end=outage.end - 1)
    assert len(salon) == 66


def test_a_module_that_stopped_reporting(cloud: FakeNetatmoCloud) -> None:
    access = token(cloud)
    stopped = cloud.account.history.stopped[CAVE]
    before = measure(cloud, access, device_id=ATELIER, module_id=CAVE, scale="max",
                     type="temperature,humidity,co2", date_begin=stopped - 3600)

    assert before == expected(cloud, ATELIER, CAVE, ("temperature", "humidity", "co2"),
                              stopped - 3600, NOW)
    assert len(before) in (12, 13) and before[-1][0] <= stopped
    assert all(None not in values for _, values in before[:5])
    assert measure(cloud, access, device_id=ATELIER, module_id=CAVE, scale="max",
                   type="temperature", date_begin=stopped + 1) == []
    never_paired = measure(cloud, access, device_id="70:ee:50:00:00:03",
                           module_id="05:00:00:00:00:02", scale="max", type="rain",
                           date_begin=0)
    assert never_paired == []


def test_types_a_module_does_not_measure_are_null(cloud: FakeNetatmoCloud) -> None:
    access = token(cloud)
    readings = measure(cloud, access, device_id=SALON, module_id="06:00:00:00:00:01",
                       scale="max", type="WindStrength,windangle,guststrength,gustangle,rain",
                       date_begin=NOW - 3600)

    assert len(readings) == 12
    assert all(values[4] is None for _, values in readings)
    assert sum(v is not None for _, values in readings for v in values[:4]) >= 45
    rain = measure(cloud, access, device_id=SALON, module_id="05:00:00:00:00:01",
                   scale="max", type="rain", date_begin=NOW - 3600)
    assert {values[0] for _, values in rain} == {0.303}


def test_sporadic_nulls_come_from_the_seed() -> None:
    history = History(anchor=ANCHOR, null_every=50)
    series = demo_account(history=history).weather_series(COACH, None)
    assert series is not None
    values = [v for _, vs in history.readings(series, ("temperature", "co2"), ANCHOR - DAY,
                                              ANCHOR) for v in vs]
    assert 0 < values.count(None) < 30
    again = [v for _, vs in history.readings(series, ("temperature", "co2"), ANCHOR - DAY,
                                             ANCHOR) for v in vs]
    assert again == values


@pytest.mark.parametrize("scale, size", [("30min", 1800), ("1hour", 3600), ("3hours", 10800),
                                         ("1day", DAY)])
def test_aggregated_scales_are_stamped_mid_bucket(cloud: FakeNetatmoCloud, scale: str,
                                                  size: int) -> None:
    access = token(cloud)
    begin = ANCHOR - 2 * DAY
    mid = measure(cloud, access, device_id=SALON, scale=scale, type="temperature,co2",
                  date_begin=begin, date_end=ANCHOR - 1)
    real = measure(cloud, access, device_id=SALON, scale=scale, type="temperature,co2",
                   date_begin=begin, date_end=ANCHOR - 1, real_time="true")

    assert [t for t, _ in mid] == list(range(begin + size // 2, ANCHOR, size))
    assert [t for t, _ in real] == list(range(begin, ANCHOR, size))
    assert [v for _, v in mid] == [v for _, v in real]
    stored = expected(cloud, SALON, None, ("temperature", "co2"), begin, begin + size - 1)
    temperatures = [v[0] for _, v in stored if v[0] is not None]
    assert mid[0][1][0] == round(sum(temperatures) / len(temperatures), 1)


def test_weeks_start_on_monday_months_on_the_first(cloud: FakeNetatmoCloud) -> None:
    access = token(cloud)
    weeks = measure(cloud, access, device_id=SALON, scale="1week", type="temperature",
                    date_begin=ANCHOR - 60 * DAY, real_time="true")
    months = measure(cloud, access, device_id=SALON, scale="1month", type="temperature",
                     date_begin=0, real_time="true")

    assert {time.gmtime(t).tm_wday for t, _ in weeks} == {0}
    assert {time.gmtime(t).tm_mday for t, _ in months} == {1}
    assert len(months) == 13 and bucket_start(ANCHOR, "1month") == months[-1][0]


def test_min_and_max_temperature_of_a_day(cloud: FakeNetatmoCloud) -> None:
    access = token(cloud)
    (day,) = measure(cloud, access, device_id=SALON, module_id=JARDIN, scale="1day",
                     type="min_temp,max_temp,temperature", date_begin=ANCHOR - DAY,
                     date_end=ANCHOR - 1, real_time="true")
    stored = [v[0] for _, v in expected(cloud, SALON, JARDIN, ("temperature",),
                                        ANCHOR - DAY, ANCHOR - 1) if v[0] is not None]

    assert day == (ANCHOR - DAY, [min(stored), max(stored), round(sum(stored) / len(stored), 1)])


def test_rooms_measured_and_setpoint_temperature(cloud: FakeNetatmoCloud) -> None:
    access = token(cloud)
    status, answer = get(cloud, "getroommeasure", access, home_id=MAISON, room_id=SALON_ROOM,
                         scale="max", type="temperature,sp_temperature",
                         date_begin=NOW - 3600)
    series = cloud.account.room_series(MAISON, SALON_ROOM)
    assert series is not None

    assert status == 200
    assert expand(answer["body"]) == list(cloud.account.history.readings(
        series, ("temperature", "sp_temperature"), NOW - 3600, NOW))
    assert {values[1] for _, values in expand(answer["body"])} <= {21, None}
    chalet = get(cloud, "getroommeasure", access, home_id=CHALET, room_id="3366042811",
                 scale="max", type="temperature", date_begin=NOW - DAY)
    assert chalet == (200, {**chalet[1], "body": []})
    assert get(cloud, "getroommeasure", access, home_id=MAISON, room_id="42", scale="max",
               type="temperature")[1]["error"]["code"] == 21


def test_scopes_unknown_devices_and_bad_parameters(cloud: FakeNetatmoCloud) -> None:
    stations_only = token(cloud, ("read_station",))
    coach_only = token(cloud, ("read_homecoach",))
    access = token(cloud)
    ok = {"scale": "max", "type": "temperature"}

    def code(path: str, who: str, **params: object) -> tuple[int, int | None]:
        status, answer = get(cloud, path, who, **params)
        return status, answer.get("error", {}).get("code")

    assert code("getmeasure", stations_only, device_id=SALON, **ok) == (200, None)
    assert code("getmeasure", stations_only, device_id=COACH, **ok) == (403, 13)
    assert code("getmeasure", coach_only, device_id=COACH, **ok) == (200, None)
    assert code("getmeasure", coach_only, device_id=SALON, **ok) == (403, 13)
    assert code("getroommeasure", stations_only, home_id=MAISON, room_id=SALON_ROOM,
                **ok) == (403, 13)
    assert code("getmeasure", access, device_id="70:ee:50:99:99:99", **ok) == (403, 9)
    assert code("getmeasure", access, device_id=SALON, module_id="02:99", **ok) == (403, 9)
    assert code("getmeasure", access, device_id=SALON, scale="max") == (400, 10)
    assert code("getmeasure", access, device_id=SALON, scale="2hours",
                type="temperature") == (400, 21)
    assert code("getmeasure", access, device_id=SALON, scale="max",
                type="temperature,luminosity") == (400, 21)
    assert code("getmeasure", access, device_id=SALON, limit=1025, **ok) == (400, 21)
    assert code("getmeasure", access, device_id=SALON, date_begin="yesterday",
                **ok) == (400, 21)
    assert cloud.count("missing_scope") == 3 and cloud.count("device_not_found") == 2


def test_measure_calls_share_the_users_rate_limits() -> None:
    with FakeNetatmoCloud(rate_limits=((3, 60.0),)) as cloud:
        access = token(cloud)
        answers = [get(cloud, "getstationsdata", access)[0],
                   get(cloud, "getmeasure", access, device_id=SALON, scale="max",
                       type="temperature", limit=1)[0],
                   get(cloud, "getroommeasure", access, home_id=MAISON, room_id=SALON_ROOM,
                       scale="max", type="temperature", limit=1)[0]]
        refused = get(cloud, "getmeasure", access, device_id=SALON, scale="max",
                      type="temperature")

        assert answers == [200, 200, 200]
        assert refused == (429, {"error": {"code": 26, "message": "User usage reached"}})
        assert cloud.count("rate_limited") == 1
    assert scaled_rate_limits(60) == ((50, 10 / 60), (500, 60.0))


def test_history_values_are_the_live_values_at_that_time() -> None:
    account = demo_account(history=demo_history(ANCHOR))
    salon = account.weather_series(SALON, None)
    assert salon is not None
    stamp, values = next(account.history.readings(salon, ("temperature", "co2"), NOW - 3600,
                                                  NOW))
    clock = FakeClock(stamp)
    with FakeNetatmoCloud(account=account, clock=clock) as cloud:
        status, answer = get(cloud, "getstationsdata", token(cloud))
    dashboard = answer["body"]["devices"][0]["dashboard_data"]
    assert status == 200
    assert [dashboard["Temperature"], dashboard["CO2"]] == values


def test_a_year_of_ten_modules_is_computed_lazily() -> None:
    account = ten_module_account(history=demo_history(ANCHOR))
    ids = [(s.id, None) for s in account.stations] + [
        (s.id, m.id) for s in account.stations for m in s.modules] + [
        (c.id, None) for c in account.home_coaches]
    series = [account.weather_series(device, module) for device, module in ids]
    history = account.history

    assert len(series) == 10 and None not in series
    pages = [history.measure(s, ("temperature",), "max", history.start + day * DAY,
                             ANCHOR, now=ANCHOR)
             for s in series if s is not None for day in (0, 180, 362)]
    assert all(len(page) == MAX_LIMIT for page in pages)
    assert all(page[-1][0] - page[0][0] < 4 * DAY for page in pages)
