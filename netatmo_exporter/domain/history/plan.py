"""Netatmo's stored history, planned: which series to ask for, over which range, how to page.

Every reading goes out under the family and labels the live exporter gives that module or
room, so the planner labels modules with `label_modules` and rooms with `room_rows`, the
very functions the collectors use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from netatmo_exporter.domain.authorization.scopes import (
    HOMECOACH_SCOPE,
    STATIONS_SCOPE,
    THERMOSTAT_SCOPE,
)
from netatmo_exporter.domain.energy.model import (
    EnergySnapshot,
    HomeReport,
    HomeSetup,
    room_rows,
)
from netatmo_exporter.domain.history.when import format_when
from netatmo_exporter.domain.weather.labels import label_modules
from netatmo_exporter.domain.weather.model import Station

PAGE_LIMIT = 1024
"""Netatmo's most readings per getmeasure answer."""
HEAD_BLOCK = 3 * 3600.0
"""Prometheus keeps about the last 3 hours in its head block; promtool's blocks may not
reach into it."""
READING_INTERVAL = 300.0
"""Stations store a reading about every 5 minutes; used to estimate pages only."""

OutputFormat = Literal["openmetrics", "prometheus"]
FORMATS: tuple[OutputFormat, ...] = ("openmetrics", "prometheus")
SourceKind = Literal["module", "room"]

# getmeasure types per module type, each with the `Readings` field its live family reads.
MEASURE_TYPES: dict[str, tuple[str, ...]] = {
    "NAMain": ("temperature", "humidity", "co2", "pressure", "noise"),
    "NAModule1": ("temperature", "humidity"),
    "NAModule2": ("windstrength", "windangle", "guststrength", "gustangle"),
    "NAModule3": ("rain",),
    "NAModule4": ("temperature", "humidity", "co2"),
    "NHC": ("temperature", "humidity", "co2", "pressure", "noise", "health_idx"),
}
READING_FIELDS = {
    "temperature": "temperature", "humidity": "humidity", "co2": "co2",
    "pressure": "pressure", "noise": "noise", "windstrength": "wind_strength",
    "windangle": "wind_angle", "guststrength": "gust_strength", "gustangle": "gust_angle",
    "rain": "rain", "health_idx": "health_idx",
}
# getroommeasure types, each with the `RoomStatus` field its live family reads.
ROOM_TYPES = ("temperature", "sp_temperature")
ROOM_FIELDS = {"temperature": "measured_temperature", "sp_temperature": "setpoint_temperature"}

class HistoryError(Exception):
    """A backfill cannot go on; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Inclusive whole seconds, as Netatmo's `date_begin` and `date_end`."""

    begin: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.begin


def resolve_range(start: float, stop: float, now: float, output: OutputFormat,
                  stop_default: bool = False) -> tuple[TimeRange, list[str]]:
    """The range to fetch and the lines to tell the user; raises `HistoryError` when there
    is nothing sensible to fetch."""
    notes = []
    if start > now:
        raise HistoryError(f"--from {format_when(start)} is in the future")
    head = now - HEAD_BLOCK
    if output == "openmetrics" and start >= head:
        raise HistoryError(
            f"--from {format_when(start)} lies within the last 3 hours, which Prometheus "
            "keeps in its head block: promtool's blocks may not reach into it. Give an "
            "earlier --from, or --format prometheus for VictoriaMetrics")
    if start > stop:
        raise HistoryError(f"--from {format_when(start)} is after --to {format_when(stop)}"
                           + (" (3 hours ago, its default)" if stop_default else ""))
    if output == "openmetrics" and stop > head:
        notes.append(f"--to cut to {format_when(head)}: the last 3 hours are in Prometheus' "
                     "head block, which promtool's blocks may not reach into (the live "
                     "exporter covers them)")
        stop = head
    return TimeRange(math.ceil(start), math.floor(stop)), notes


@dataclass(frozen=True, slots=True)
class Series:
    """One getmeasure type of one source, under its live family's labels."""

    key: str
    measure_type: str
    field: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Source:
    """One getmeasure (module) or getroommeasure (room) target; its types come in one call."""

    key: str
    kind: SourceKind
    ids: tuple[str, str | None]
    """(device_id, module_id or None for the device itself), or (home_id, room_id)."""
    scope: str
    title: str
    series: tuple[Series, ...]

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(series.measure_type for series in self.series)


@dataclass(frozen=True, slots=True)
class Plan:
    sources: tuple[Source, ...]
    notes: tuple[str, ...] = ()

    @property
    def series(self) -> tuple[Series, ...]:
        return tuple(series for source in self.sources for series in source.series)


def plan_history(stations: Sequence[Station], homes: Sequence[HomeSetup] = ()) -> Plan:
    """A source per weather module (favourites excluded: their history is not ours to
    read) and per heated room. `stations` in the live snapshot's order, favourites
    included, so that duplicate names are told apart exactly as the live exporter does."""
    sources: list[Source] = []
    notes: list[str] = []
    for station, module, labels in label_modules(stations):
        if station.favorite:
            continue
        title = f"{labels.module} ({labels.station})"
        types = MEASURE_TYPES.get(module.type)
        if types is None:
            notes.append(f"skipped {title}: getmeasure does not know module type "
                         f"{module.type!r}")
            continue
        key = f"m{len(sources):03d}"
        values: tuple[tuple[str, str], ...] = (
            ("module", labels.module), ("station", labels.station),
                  ("home", labels.home))
        sources.append(Source(
            key, "module", (station.id, None if module is station.main else module.id),
            HOMECOACH_SCOPE if station.kind == "homecoach" else STATIONS_SCOPE, title,
            tuple(Series(f"{key}-{kind}", kind, READING_FIELDS[kind], values)
                  for kind in types)))
    snapshot = EnergySnapshot(tuple(HomeReport(home) for home in homes), fetched_at=0.0)
    for row in room_rows(snapshot):
        title = f"room {row.room} ({row.home})"
        if not row.setup.module_ids:
            notes.append(f"skipped {title}: no heating module measures it")
            continue
        key = f"r{len(sources):03d}"
        values = (("room", row.room), ("home", row.home))
        sources.append(Source(
            key, "room", (row.home_setup.id, row.setup.id), THERMOSTAT_SCOPE, title,
            tuple(Series(f"{key}-{kind}", kind, ROOM_FIELDS[kind], values)
                  for kind in ROOM_TYPES)))
    return Plan(tuple(sources), tuple(notes))


Row = tuple[int, tuple[float | None, ...]]
"""One stored reading time with a value (or None) per requested type, in type order."""


def rows_in_range(rows: Iterable[Row], begin: int, end: int) -> list[Row]:
    """The rows a page may contribute: within [begin, end], strictly ascending, so that no
    reading is written twice whatever the server sends."""
    kept: list[Row] = []
    for row in sorted(rows, key=lambda r: r[0]):
        if begin <= row[0] <= end and (not kept or row[0] > kept[-1][0]):
            kept.append(row)
    return kept


def next_begin(begin: int, end: int, received: Sequence[Row], limit: int = PAGE_LIMIT
               ) -> int | None:
    """Where the next page starts, or None when the source is done: a page shorter than
    `limit` ends the range; a full one continues right after its last reading."""
    if len(received) < limit:
        return None
    following = max(max(row[0] for row in received) + 1, begin + 1)
    return None if following > end else following


def estimated_pages(span: TimeRange, begin: int | None) -> int:
    """Pages a source still needs at about one reading per 5 minutes (at least one)."""
    if begin is None:
        return 0
    return max(1, math.ceil((span.end - begin + 1) / (PAGE_LIMIT * READING_INTERVAL)))


@dataclass
class Cursors:
    """Where each source's next page starts (None: done), and the bytes each series has on
    disk after the last finished page; what a checkpoint holds."""

    begins: dict[str, int | None] = field(default_factory=dict)
    spooled: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    recent_calls: list[float] = field(default_factory=list)
    """When the calls of the last hour went out: a run stopped and started again keeps to
    its hourly share."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Sources whose history Netatmo refused, with its words."""

    @classmethod
    def start(cls, plan: Plan, span: TimeRange, recent_calls: Sequence[float] = ()
              ) -> Cursors:
        return cls({source.key: span.begin for source in plan.sources},
                   {series.key: 0 for series in plan.series}, 0, list(recent_calls))

    def remaining_pages(self, span: TimeRange) -> int:
        return sum(estimated_pages(span, begin) for begin in self.begins.values())

    def covered(self, span: TimeRange) -> float:
        """Share of the range done, averaged over the sources."""
        if not self.begins or span.seconds <= 0:
            return 1.0 if all(b is None for b in self.begins.values()) else 0.0
        done = [1.0 if begin is None else (begin - span.begin) / (span.seconds + 1)
                for begin in self.begins.values()]
        return sum(done) / len(done)
