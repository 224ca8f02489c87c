"""getmeasure and getroommeasure answers, in either `optimize` shape, to rows.

`optimize=true`: `{"body": [{"beg_time": t, "step_time": s, "value": [[...], ...]}, ...]}`,
the i-th values at `t + i * s`; `optimize=false`: `{"body": {"<t>": [...], ...}}`. Each
value list holds one value (or null) per requested type, in the order asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netatmo_exporter.adapters.netatmo.payload import MAX_MAGNITUDE, _number
from netatmo_exporter.domain.errors import BadResponse
from netatmo_exporter.domain.history.plan import Row

MAX_TIME = int(MAX_MAGNITUDE)
MAX_STEP = 366 * 86400


def parse_measure(payload: object, endpoint: str, types: int) -> tuple[Row, ...]:
    """The rows of an answer, ascending by time; raises `BadResponse` when it has neither
    shape or a row does not hold `types` values."""
    if not isinstance(payload, Mapping) or "body" not in payload:
        raise _bad(endpoint, "has no body")
    body = payload["body"]
    if isinstance(body, list):
        rows = [row for run in body for row in _run(run, endpoint, types)]
    elif isinstance(body, Mapping):
        rows = [(_time(key, endpoint), _values(values, endpoint, types))
                for key, values in body.items()]
    else:
        raise _bad(endpoint, "has a body that is neither a list of runs nor an object")
    rows.sort(key=lambda row: row[0])
    return tuple(rows)


def _run(run: object, endpoint: str, types: int) -> list[Row]:
    if not isinstance(run, Mapping):
        raise _bad(endpoint, "has a run that is not an object")
    begin = _time(run.get("beg_time"), endpoint)
    step = run.get("step_time", 0)
    values = run.get("value")
    if (isinstance(step, bool) or not isinstance(step, int | float)
            or not 0 <= step <= MAX_STEP):
        raise _bad(endpoint, f"has a run with step_time {_shown(step)}")
    if not isinstance(values, list):
        raise _bad(endpoint, "has a run without a value list")
    if len(values) > 1 and step == 0:
        raise _bad(endpoint, "has a run of several readings without step_time")
    rows = [(begin + int(index * step), _values(value, endpoint, types))
            for index, value in enumerate(values)]
    if rows and rows[-1][0] > MAX_TIME:
        raise _bad(endpoint, f"has a run reaching past the year 5000 ({rows[-1][0]})")
    return rows


def _time(value: object, endpoint: str) -> int:
    """A reading time: seconds since the epoch, as digits or a whole number, before the
    year 5000."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TIME:
        return value
    raise _bad(endpoint, f"has a reading time {_shown(value)}")


def _values(values: object, endpoint: str, types: int) -> tuple[float | None, ...]:
    if not isinstance(values, list) or len(values) != types:
        raise _bad(endpoint, f"has a reading that is not a list of {types} values")
    return tuple(_value(value, endpoint) for value in values)


def _value(value: Any, endpoint: str) -> float | None:
    if value is None:
        return None
    number = _number(value)
    if number is None:
        raise _bad(endpoint, f"has a reading value {_shown(value)}")
    return number


def _shown(value: object) -> str:
    """The value as the message shows it: short, and safe for any encoder."""
    try:
        text = repr(value)
    except ValueError:  # an integer of more digits than Python prints
        return "(an integer of thousands of digits)"
    text = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _bad(endpoint: str, problem: str) -> BadResponse:
    return BadResponse(f"Netatmo {endpoint}: the answer {problem}")
