"""The readings Netatmo stored, as ``getmeasure`` and ``getroommeasure`` serve them.

Nothing is materialised: every reading time and value is a pure function of the
:class:`History` (``seed``, ``anchor``, ``days``, ``outages``, ``stopped``, ``null_every``),
the series key (a module, device or room id) and the time, computed when asked. A year of
ten modules costs no memory until a range of it is requested.

Reading times (scale ``max``): series ``key`` has one block of 12 readings per hour from
``start`` (``anchor - days * 86400``). Reading ``i`` of block ``b`` is stored at
``start + 3600 * b + 300 * i + e`` where the clock error ``e`` (0-12 s) starts at 0-6 s in
each block and changes by 1-4 s before about one reading in three: about every 5 minutes,
irregular by some seconds (``step`` shorter than 300 s: a block of 12 readings every
``12 * step`` seconds, the error at most ``step / 25``), so ``optimize=true`` runs break
where the step changes. No reading exists before ``start``, after the data time ("now"),
inside an :class:`Outage` of the series' device (a station offline: its main module and
every module of it), or after ``stopped[key]`` (a module that stopped reporting).

Values: the series' live value of that type at the reading time: a ``Drift`` of the live
account evaluated at the reading time (never frozen, so that a history always varies), a
constant as it is, ``None`` where the module does not measure that type; and about one
value in ``null_every`` (0: never) is ``None`` as Netatmo sometimes stores.

Aggregated scales (``30min``, ``1hour``, ``3hours``, ``1day``, ``1week`` from Monday,
``1month``; all in UTC): a bucket holds the readings from its start to the next bucket's,
its value is the mean of each type's non-null values (rounded to 1 decimal; ``rain`` is
summed to 3 decimals; ``min_temp`` / ``max_temp`` are the least / greatest temperature), it
is stamped mid-bucket (``real_time=true``: at its start) and only buckets with at least
one reading exist. ``date_begin`` / ``date_end`` bound the stamps, both inclusive;
``limit`` counts readings (buckets) from ``date_begin``.
"""

from __future__ import annotations

import calendar
import random
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = Any
"""A JSON value as the simulator builds and parses them."""

READING_STEP = 300
READINGS_PER_BLOCK = 12
MAX_LIMIT = 1024
DAY = 86400

WEATHER_TYPES: Mapping[str, str] = {
    "temperature": "Temperature",
    "humidity": "Humidity",
    "co2": "CO2",
    "pressure": "Pressure",
    "noise": "Noise",
    "windstrength": "WindStrength",
    "windangle": "WindAngle",
    "guststrength": "GustStrength",
    "gustangle": "GustAngle",
    "rain": "Rain",
    "health_idx": "health_idx",
}
"""``getmeasure`` type -> the ``dashboard_data`` field it stores."""
ROOM_TYPES: Mapping[str, str] = {
    "temperature": "therm_measured_temperature",
    "sp_temperature": "therm_setpoint_temperature",
}
"""``getroommeasure`` type -> the ``homestatus`` room field it stores."""
DERIVED_TYPES = ("min_temp", "max_temp")
"""Types derived from ``temperature`` (the least and greatest of a bucket)."""
SCALES = ("max", "30min", "1hour", "3hours", "1day", "1week", "1month")
_FIXED_BUCKETS = {"30min": 1800, "1hour": 3600, "3hours": 10800, "1day": DAY, "1week": 7 * DAY}
_MONDAY = 4 * DAY
"""1970-01-05, a Monday, is 4 days after the epoch: weeks are aligned on it."""


def today() -> int:
    """Midnight UTC of the current day: the default anchor of a history."""
    return int(time.time()) // DAY * DAY


@dataclass(frozen=True)
class Outage:
    """The device (a station, a Home Coach or an Energy home) stored nothing in
    ``[start, end)``: a hole in every series of it."""

    device_id: str
    start: int
    end: int


@dataclass(frozen=True)
class SimSeries:
    """One measured thing: a module, a device's own sensors or a room; ``values`` maps a
    measure type (lower case) to a ``Drift``, a constant or nothing."""

    key: str
    device_id: str
    scope: str
    values: Mapping[str, JSON]


@dataclass(frozen=True)
class History:
    """Knobs of the stored history; see the module docstring."""

    seed: int = 0
    anchor: int = field(default_factory=today)
    days: int = 366
    outages: tuple[Outage, ...] = ()
    stopped: Mapping[str, int] = field(default_factory=dict)
    null_every: int = 500
    step: int = READING_STEP
    """Seconds between readings; shorter than 300 for tests that watch a history grow (a
    clock error of at most a twenty-fifth of it keeps the readings in order)."""

    @property
    def start(self) -> int:
        """The first moment a reading may be stored at."""
        return self.anchor - self.days * DAY

    def times(self, series: SimSeries, begin: int, end: int) -> Iterator[int]:
        """Reading times of ``series`` within ``[begin, end]``, ascending, lazily."""
        begin = max(begin, self.start)
        end = min(end, self.stopped.get(series.key, end))
        if end < begin or not series.values:
            return
        holes = [o for o in self.outages if o.device_id == series.device_id]
        block_span = self.step * READINGS_PER_BLOCK
        for block in range((begin - self.start) // block_span,
                           (end - self.start) // block_span + 1):
            for stamp in self._block_times(series.key, block):
                if begin <= stamp <= end and not any(o.start <= stamp < o.end for o in holes):
                    yield stamp

    def _block_times(self, key: str, block: int) -> list[int]:
        draws = random.Random(f"{self.seed}:{key}:{block}")  # noqa: S311 - a simulation
        base = self.start + block * self.step * READINGS_PER_BLOCK
        largest = self.step // 25
        error = draws.randint(0, largest // 2)
        stamps = [base + error]
        for index in range(1, READINGS_PER_BLOCK):
            if draws.random() < 0.3:
                error = min(largest, max(0, error + draws.choice((-4, -3, -2, -1, 1, 2, 3, 4))))
            stamps.append(base + index * self.step + error)
        return stamps

    def value(self, series: SimSeries, kind: str, stamp: int) -> JSON:
        """The stored value of one type at a reading time (None: not stored)."""
        spec = series.values.get("temperature" if kind in DERIVED_TYPES else kind)
        if spec is None:
            return None
        if self.null_every > 0:
            draw = zlib.crc32(f"{self.seed}:{series.key}:{stamp}:{kind}".encode())
            if draw % self.null_every == 0:
                return None
        value_at = getattr(spec, "value_at", None)
        if value_at is not None:
            return value_at(stamp, False)
        return spec if isinstance(spec, int | float) and not isinstance(spec, bool) else None

    def readings(self, series: SimSeries, kinds: Sequence[str], begin: int, end: int
                 ) -> Iterator[tuple[int, list[JSON]]]:
        """Every stored reading (scale ``max``) in ``[begin, end]``: time and values."""
        for stamp in self.times(series, begin, end):
            yield stamp, [self.value(series, kind, stamp) for kind in kinds]

    def measure(self, series: SimSeries, kinds: Sequence[str], scale: str, begin: int, end: int,
                *, now: int, limit: int = MAX_LIMIT, real_time: bool = False
                ) -> list[tuple[int, list[JSON]]]:
        """What a measure call answers before shaping: at most ``limit`` (time, values)
        stamped within ``[begin, end]``, from readings stored up to ``now``."""
        if scale == "max":
            found = []
            for reading in self.readings(series, kinds, begin, min(end, now)):
                found.append(reading)
                if len(found) >= limit:
                    break
            return found
        return self._aggregate(series, kinds, scale, (begin, end), now, limit, real_time)

    def _aggregate(self, series: SimSeries, kinds: Sequence[str], scale: str,
                   stamps: tuple[int, int], now: int, limit: int, real_time: bool
                   ) -> list[tuple[int, list[JSON]]]:
        begin, end = stamps
        found: list[tuple[int, list[JSON]]] = []
        bucket = bucket_start(max(begin, self.start), scale)
        last_reading = min(now, self.stopped.get(series.key, now))
        while bucket <= last_reading and len(found) < limit:
            following = bucket_end(bucket, scale)
            stamp = bucket if real_time else bucket + (following - bucket) // 2
            if stamp > end:
                break
            if stamp >= begin:
                readings = [values for _, values in self.readings(
                    series, kinds, bucket, min(following - 1, last_reading))]
                if readings:
                    found.append((stamp, [_combine(kind, [r[i] for r in readings])
                                          for i, kind in enumerate(kinds)]))
            bucket = following
        return found


def _combine(kind: str, stored: list[JSON]) -> JSON:
    values = [value for value in stored if value is not None]
    if not values:
        return None
    if kind == "min_temp":
        return min(values)
    if kind == "max_temp":
        return max(values)
    if kind == "rain":
        return round(sum(values), 3)
    return round(sum(values) / len(values), 1)


def bucket_start(stamp: int, scale: str) -> int:
    """Start of the ``scale`` bucket holding ``stamp`` (UTC)."""
    if scale == "1month":
        moment = datetime.fromtimestamp(stamp, UTC)
        return calendar.timegm((moment.year, moment.month, 1, 0, 0, 0))
    size = _FIXED_BUCKETS[scale]
    origin = _MONDAY if scale == "1week" else 0
    return (stamp - origin) // size * size + origin


def bucket_end(start: int, scale: str) -> int:
    """Start of the bucket after the one starting at ``start``."""
    if scale == "1month":
        moment = datetime.fromtimestamp(start, UTC)
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year,
                                                                        moment.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0))
    return start + _FIXED_BUCKETS[scale]


def shape(readings: list[tuple[int, list[JSON]]], optimize: bool) -> JSON:
    """The ``body`` of a measure answer: runs of equal steps, or ``{"<time>": values}``.

    A run breaks where the step between readings changes; a run of one reading has no
    ``step_time`` (as Netatmo answers it)."""
    if not optimize:
        return {str(stamp): values for stamp, values in readings}
    runs: list[tuple[int, int | None, list[list[JSON]]]] = []
    previous = 0
    for stamp, values in readings:
        if runs:
            begin, step, run = runs[-1]
            if step in (None, stamp - previous):
                runs[-1] = (begin, stamp - previous, run)
                run.append(values)
                previous = stamp
                continue
        runs.append((stamp, None, [values]))
        previous = stamp
    return [{"beg_time": begin, **({} if step is None else {"step_time": step}), "value": run}
            for begin, step, run in runs]
