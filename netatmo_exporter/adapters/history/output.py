"""The exposition lines of backfilled readings: the live families' names, help and units.

A module's series goes to the `READING_METRICS` family whose live value reads that
`Readings` field, converted by that very family's function (gusts from km/h to m/s); a
room's to the Energy room family of its `RoomStatus` field. Two formats:

    netatmo_sensor_temperature_celsius{module="Outdoor",station="S",home="H"} 7.3 1733000000
    netatmo_sensor_temperature_celsius{module="Outdoor",station="S",home="H"} 7.3 1733000000000

the first OpenMetrics (seconds, `# EOF` last) for `promtool tsdb create-blocks-from
openmetrics`, the second Prometheus text (milliseconds) for VictoriaMetrics' import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netatmo_exporter.adapters.metrics.energy_metrics import ROOM_METRICS
from netatmo_exporter.adapters.metrics.weather_metrics import READING_METRICS
from netatmo_exporter.domain.history.plan import OutputFormat, Series
from netatmo_exporter.domain.weather.model import Readings

LabelPairs = tuple[tuple[str, str], ...]
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
EOF = "# EOF\n"
_ROOM_FAMILIES = {"measured_temperature": "temperature", "setpoint_temperature": "setpoint"}


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    help: str
    convert: Callable[[float], float]


def _reading_family(field: str) -> Family:
    matches = [spec for spec in READING_METRICS
               if spec.value(Readings(**{field: 1.0})) is not None]  # type: ignore[arg-type]
    if len(matches) != 1:
        raise LookupError(f"no single live family reads Readings.{field}")
    spec = matches[0]

    def convert(value: float) -> float:
        converted = spec.value(Readings(**{field: value}))  # type: ignore[arg-type]
        assert converted is not None
        return converted

    return Family(spec.metric.name, spec.metric.text, convert)


def _room_family(field: str) -> Family:
    spec = ROOM_METRICS[_ROOM_FAMILIES[field]]
    return Family(spec.name, spec.text, lambda value: value)


def family_of(series: Series) -> Family:
    """The live family a series belongs to; rooms are told by their `room` label."""
    if any(name == "room" for name, _ in series.labels):
        return _room_family(series.field)
    return _reading_family(series.field)


FAMILY_ORDER: tuple[str, ...] = (
    *(reading.metric.name for reading in READING_METRICS),
    *(spec.name for spec in ROOM_METRICS.values()),
)
"""Families in the order the live exporter lists them."""


def check_labels(extra: Sequence[str]) -> LabelPairs:
    """`--label NAME=VALUE` values; raises ValueError with the reason."""
    pairs: list[tuple[str, str]] = []
    for item in extra:
        name, sep, value = item.partition("=")
        if not sep or not LABEL_NAME.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"--label {item!r}: give NAME=VALUE with a Prometheus label name")
        if name in ("module", "station", "home", "room"):
            raise ValueError(f"--label {name}: the backfill sets {name} itself, as the live "
                             "exporter does")
        if name in (n for n, _ in pairs):
            raise ValueError(f"--label {name} is given twice")
        pairs.append((name, value))
    return tuple(pairs)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def live_series(series: Series, extra: LabelPairs) -> tuple[Family, LabelPairs]:
    """The family a series' readings go out under and its labels: the live ones, then the
    extra ones (`--label`, `--history.label`), those with an empty value left out as
    Prometheus treats them as absent. The backfill file and remote write both use it."""
    labels = tuple((name, value) for name, value in (*series.labels, *extra) if value != "")
    return family_of(series), labels


def series_prefix(name: str, labels: LabelPairs) -> str:
    """`name{a="x",b="y"} `: what every sample line of a series starts with."""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
    return f"{name}{{{inner}}} " if inner else f"{name} "


def number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def sample_lines(prefix: str, samples: Sequence[tuple[int, float]],
                 convert: Callable[[float], float], output: OutputFormat) -> str:
    suffix = "" if output == "openmetrics" else "000"
    return "".join(f"{prefix}{number(convert(value))} {time}{suffix}\n"
                   for time, value in samples)


def family_header(family: Family, output: OutputFormat) -> str:
    text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
    if output == "openmetrics":
        text = text.replace("\"", "\\\"")
    return f"# HELP {family.name} {text}\n# TYPE {family.name} gauge\n"
