"""Netatmo's answers are untrusted: the payload parsers, fed any JSON value whatsoever,
return a value or raise `BadResponse`, nothing else; and what they return can be encoded
(no half of a UTF-16 pair reaches a label) and holds only finite numbers."""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netatmo_exporter.adapters.netatmo.answer import Answer, parse_json
from netatmo_exporter.adapters.netatmo.energy_payload import parse_home_status, parse_homes
from netatmo_exporter.adapters.netatmo.measure_payload import parse_measure
from netatmo_exporter.adapters.netatmo.payload import parse_devices
from netatmo_exporter.domain.errors import BadResponse

# Every code point, halves of UTF-16 pairs included; bookworm's hypothesis (6.67) names the
# argument blacklist_categories, later ones exclude_categories (and warn on the old name).
ANY_CHARACTER = (st.characters(exclude_categories=())
                 if "exclude_categories" in inspect.signature(st.characters).parameters
                 else st.characters(blacklist_categories=()))
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(ANY_CHARACTER, max_size=8)
           | st.sampled_from(["²", "\ud800", "NaN", "1e999", "70:ee:50:00:00:01", "NAMain",
                              "NAModule1", "up", "1700000000"]))
KEYS = st.sampled_from(["body", "devices", "modules", "_id", "module_name", "station_name",
                        "type", "dashboard_data", "Temperature", "time_utc", "last_seen",
                        "battery_percent", "place", "location", "homes", "home", "rooms",
                        "id", "name", "errors", "code", "beg_time", "step_time", "value",
                        "therm_measured_temperature", "reachable", "1700000000", "²"])
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS | st.text(max_size=4), inner, max_size=6),
                    max_leaves=40)


def _walk(value: Any) -> list[Any]:
    """Every field of the dataclasses (and tuples) a parser returned."""
    found: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, tuple | list):
            stack.extend(item)
        else:
            found.append(item)
    return found


def _clean(result: object) -> None:
    for value in _walk(result):
        if isinstance(value, str):
            value.encode("utf-8")
        elif isinstance(value, float):
            assert math.isfinite(value)


PARSERS = {
    "stations": lambda p: parse_devices(p, "station"),
    "homecoaches": lambda p: parse_devices(p, "homecoach"),
    "homesdata": parse_homes,
    "homestatus": lambda p: parse_home_status(p, "home-1"),
    "getmeasure": lambda p: parse_measure(p, "getmeasure", 2),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=JSON)
def test_any_json_is_a_value_or_a_bad_response(name: str, payload: object) -> None:
    try:
        result = PARSERS[name](payload)
    except BadResponse:
        return
    _clean(result)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(devices=st.lists(st.dictionaries(KEYS, JSON, max_size=8), max_size=3))
def test_any_device_list_is_a_value_or_a_bad_response(name: str, devices: list[Any]) -> None:
    payload = {"body": {"devices": devices, "homes": devices, "home": {"rooms": devices,
                                                                       "modules": devices}}}
    try:
        result = PARSERS[name](payload)
    except BadResponse:
        return
    _clean(result)


HOSTILE_BODIES = {
    "nested_1000_deep": b'{"body": {"devices": ' + b"[" * 1000 + b"]" * 1000 + b"}}",
    "nested_100000_deep": b"[" * 100_000,
    "integer_of_400_digits": b'{"body": {"devices": [{"_id": "a", "last_status_store": '
                             + b"9" * 400 + b"}]}}",
    "nan": b'{"body": [{"beg_time": 1700000000, "step_time": NaN, "value": [[1, 2]]}]}',
    "infinity": b'{"body": {"devices": [{"_id": "a", "last_status_store": Infinity}]}}',
    "float_beyond_range": b'{"body": {"devices": [{"_id": "a", "reachable": 1e999}]}}',
    "not_utf8": b'{"body": {"devices": [{"_id": "\xff\xfe"}]}}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_a_hostile_body_is_a_bad_response_naming_the_endpoint(name: str) -> None:
    answer = Answer(200, "application/json", "", HOSTILE_BODIES[name])

    with pytest.raises(BadResponse, match=r"^Netatmo getstationsdata: the answer "):
        parse_json(answer, "getstationsdata")


@pytest.mark.parametrize(("body", "problem"), [
    ({"body": [{"beg_time": "²", "value": [[1, 2]]}]}, "reading time '\\\\xb2'"),
    ({"body": {"²": [1, 2]}}, "reading time"),
    ({"body": [{"beg_time": 1700000000, "step_time": math.nan, "value": [[1, 2]] * 2}]},
     "step_time nan"),
    ({"body": [{"beg_time": 10 ** 400, "value": [[1, 2]]}]}, "(401 characters)"),
    ({"body": [{"beg_time": 10 ** 5000, "value": [[1, 2]]}]}, "thousands of digits"),
    ({"body": {"1700000000": [10 ** 400, 1]}}, "reading value"),
    ({"body": [{"beg_time": 1700000000, "step_time": 1e300, "value": [[1, 2]] * 2}]},
     "step_time"),
])
def test_odd_measure_answers_are_bad_responses(body: object, problem: str) -> None:
    with pytest.raises(BadResponse, match=problem):
        parse_measure(body, "getmeasure", 2)


def test_half_a_utf16_pair_in_a_module_name_is_replaced() -> None:
    answer = Answer(200, "application/json", "",
                    b'{"body": {"devices": [{"_id": "a", "module_name": "Salon \\ud800",'
                    b' "station_name": "Maison \\ud83d\\ude00"}]}}')

    station, = parse_devices(parse_json(answer, "getstationsdata"), "station")

    assert station.main.name == "Salon \ufffd"
    assert station.name == "Maison \U0001f600"


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=64) | st.builds(
    lambda head, tail: head + tail,
    st.sampled_from([b"[" * 2000, b'{"a": ', b"-" + b"9" * 30, b"1e999", b"NaN", b'"\\ud800"']),
    st.binary(max_size=16)))
def test_any_bytes_are_json_or_a_bad_response(body: bytes) -> None:
    try:
        parse_json(Answer(200, "application/json", "", body), "getstationsdata")
    except BadResponse as exc:
        assert str(exc).startswith("Netatmo getstationsdata: the answer ")


@pytest.mark.parametrize("depth", [65, 100, 900])
def test_nesting_deeper_than_any_netatmo_answer_is_refused_on_every_python(depth: int) -> None:
    """Python 3.13's decoder parses 1,000 levels that 3.11's recursion refused; the depth is
    checked on the value either way (Netatmo's answers nest about eight deep)."""
    body = ('{"body": ' + "[" * depth + "]" * depth + "}").encode()
    with pytest.raises(BadResponse, match="nests too deep"):
        parse_json(Answer(200, "application/json", "", body), "getstationsdata")
    shallow = ('{"body": ' + "[" * 60 + "]" * 60 + "}").encode()
    assert parse_json(Answer(200, "application/json", "", shallow), "getstationsdata")
