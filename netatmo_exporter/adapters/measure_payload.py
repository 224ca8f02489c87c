"""getmeasure and getroommeasure answers, in either `optimize` shape, to rows.

`optimize=true`: `{"body": [{"beg_time": t, "step_time": s, "value": [[...], ...]}, ...]}`,
the i-th values at `t + i * s`; `optimize=false`: `{"body": {"<t>": [...], ...}}`. Each
value list holds one value (or null) per requested type, in the order asked for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from netatmo_exporter.domain.errors import BadResponse
from netatmo_exporter.domain.history import Row


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
    if isinstance(step, bool) or not isinstance(step, int | float) or step < 0:
        raise _bad(endpoint, f"has a run with step_time {step!r}")
    if not isinstance(values, list):
        raise _bad(endpoint, "has a run without a value list")
    if len(values) > 1 and step == 0:
        raise _bad(endpoint, "has a run of several readings without step_time")
    return [(begin + int(index * step), _values(value, endpoint, types))
            for index, value in enumerate(values)]


def _time(value: object, endpoint: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    raise _bad(endpoint, f"has a reading time {value!r}")


def _values(values: object, endpoint: str, types: int) -> tuple[float | None, ...]:
    if not isinstance(values, list) or len(values) != types:
        raise _bad(endpoint, f"has a reading that is not a list of {types} values")
    return tuple(_value(value, endpoint) for value in values)


def _value(value: Any, endpoint: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(endpoint, f"has a reading value {value!r}")
    return value


def _bad(endpoint: str, problem: str) -> BadResponse:
    return BadResponse(f"Netatmo {endpoint}: the answer {problem}")
