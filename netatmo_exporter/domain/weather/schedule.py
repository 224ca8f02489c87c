"""When to call Netatmo next: each device's upload rhythm, learned from `last_status_store`.

A station uploads about every 10 minutes; what it uploaded becomes visible through the API
a few seconds after `last_status_store`. The planner learns, per device, the period between
uploads and that visibility delay, and plans the next data call just after the next upload
should be visible. A call that finds no new upload is retried once (`MAX_RETRIES`),
`RETRY_STEP` seconds later; after that the upload counts as missed and the device waits for
the next one of its rhythm, so a missed upload never causes a burst. Until a rhythm is
known, and when uploads stop, the fallback interval (`--refresh-interval`) applies.

Pure: every method is handed `now`; nothing here reads a clock or sleeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from netatmo_exporter.domain.weather.model import DeviceKind

RefreshMode = Literal["aligned", "fixed"]
REFRESH_MODES: tuple[RefreshMode, ...] = ("aligned", "fixed")
CadenceState = Literal["learning", "aligned", "retrying", "stalled"]

MIN_PERIOD = 5.0
"""Shorter gaps between uploads are not a rhythm (a simulator rendering `now`, a clock step)."""
PERIOD_SAMPLES = 9
DEFAULT_DELAY = 10.0
DELAY_UP = 2.0
MARGIN_PER_PERIOD = 1 / 200
DELAY_DOWN = 0.05
MAX_DOWN_STREAK = 3
FAST_DOWN = 0.3
LATE_MEMORY = 10
RETRY_STEP = 3.0
MAX_RETRIES = 1
STALL_AFTER_MISSED = 3
MIN_GAP = 1.0
COALESCE = 1.0


@dataclass(frozen=True, slots=True)
class DeviceCadence:
    """What the planner knows of one device, as the status page shows it."""

    device_id: str
    kind: DeviceKind
    state: CadenceState
    last_upload: float | None
    period: float | None
    delay: float
    next_call: float


@dataclass
class _Device:
    kind: DeviceKind
    next_call: float
    last_upload: float | None = None
    period: float | None = None
    samples: list[float] = field(default_factory=list)
    delay: float = DEFAULT_DELAY
    down_streak: int = 0
    retries: int = 0
    missed: int = 0
    misses_in_a_row: int = 0
    early_calls: list[float] = field(default_factory=list)
    late_by: list[float] = field(default_factory=list)

    @property
    def expected_upload(self) -> float | None:
        if self.last_upload is None or self.period is None:
            return None
        return self.last_upload + self.period * (1 + self.missed)

    @property
    def state(self) -> CadenceState:
        if self.period is None:
            return "learning"
        if self.misses_in_a_row >= STALL_AFTER_MISSED:
            return "stalled"
        return "retrying" if self.retries else "aligned"


class UploadPlanner:
    """Per-device upload rhythm and the data calls it asks for.

    Feed it every device a data call returned (`observe`), then ask which devices are due
    (`due`) and when the next call is (`next_call`).
    """

    def __init__(self, fallback: float) -> None:
        self._fallback = fallback
        self._devices: dict[str, _Device] = {}

    def observe(self, kind: DeviceKind, uploads: Iterable[tuple[str, float | None]],
                called_at: float, complete: bool) -> None:
        """A call for `kind` at `called_at` returned these (device id, last_status_store).
        `complete`: it listed every device of that kind, so the ones it did not are gone."""
        seen: set[str] = set()
        for device_id, last_upload in uploads:
            seen.add(device_id)
            device = self._devices.get(device_id)
            if device is None or device.kind != kind:
                device = self._devices[device_id] = _Device(kind, called_at)
            _observe(device, last_upload, called_at, self._fallback)
        if complete:
            for device_id in [d for d, dev in self._devices.items()
                              if dev.kind == kind and d not in seen]:
                del self._devices[device_id]

    def forget(self, kind: DeviceKind) -> None:
        """Devices of an endpoint no longer asked for (its scope was refused)."""
        for device_id in self.known(kind):
            del self._devices[device_id]

    def next_call(self) -> float | None:
        """When the earliest device is due; None before any device is known."""
        return min((device.next_call for device in self._devices.values()), default=None)

    def due(self, now: float) -> dict[DeviceKind, tuple[str, ...]]:
        """Devices whose call falls due by `now` (or within a second of it), by kind."""
        wanted: dict[DeviceKind, list[str]] = {}
        for device_id, device in self._devices.items():
            if device.next_call <= now + COALESCE:
                wanted.setdefault(device.kind, []).append(device_id)
        return {kind: tuple(ids) for kind, ids in wanted.items()}

    def known(self, kind: DeviceKind) -> tuple[str, ...]:
        return tuple(d for d, device in self._devices.items() if device.kind == kind)

    def cadences(self) -> tuple[DeviceCadence, ...]:
        return tuple(
            DeviceCadence(device_id, device.kind, device.state, device.last_upload,
                          device.period, device.delay, device.next_call)
            for device_id, device in self._devices.items()
        )


def _observe(device: _Device, last_upload: float | None, now: float, fallback: float) -> None:
    if last_upload is None:
        device.next_call = now + fallback
        return
    if device.last_upload is None or last_upload > device.last_upload:
        _new_upload(device, last_upload, now)
    elif device.period is not None:
        _no_new_upload(device, now)
    _plan(device, now, fallback)


def _new_upload(device: _Device, upload: float, now: float) -> None:
    aligned = device.period is not None
    if device.last_upload is not None:
        _learn_period(device, upload - device.last_upload)
    seen_after = now - upload
    too_early = [call - upload for call in device.early_calls if call >= upload]
    if not aligned:
        device.delay = max(0.0, min(device.delay, seen_after))
    elif too_early:
        # Visible later than the delay we aimed at: aim later at once.
        device.late_by = [*device.late_by, max(too_early)][-LATE_MEMORY:]
        device.delay = max(device.delay, max(too_early)) + _margin(device)
        device.down_streak = 0
    elif seen_after <= device.delay + RETRY_STEP:
        # Found at the first try: come down fast while far above any delay recently seen,
        # then creep, faster while that keeps working, so that the delay settles where
        # few first tries (one in fifteen or so) come too early.
        device.down_streak = min(device.down_streak + 1, MAX_DOWN_STREAK)
        known_late = max(device.late_by, default=0.0)
        step = (FAST_DOWN if device.delay - _margin(device) > known_late
                else DELAY_DOWN * device.down_streak)
        device.delay = max(0.0, device.delay - step)
    device.last_upload = upload
    device.retries = device.missed = device.misses_in_a_row = 0
    device.early_calls.clear()


def _learn_period(device: _Device, gap: float) -> None:
    if gap < MIN_PERIOD:
        return
    # A gap spanning missed uploads counts as that many periods. One gap alone may be such
    # a gap, and a period learned twice too long would confirm itself (every other upload
    # seen, each a double gap): the shorter of the first two gaps makes the first period.
    known = device.period or (min(device.samples) if device.samples else None)
    multiple = 1 if known is None else max(1, round(gap / known))
    device.samples = [*device.samples, gap / multiple][-PERIOD_SAMPLES:]
    if len(device.samples) >= 2:
        device.period = min(device.samples) if len(device.samples) < 3 else (
            median(device.samples))


def median(values: list[float]) -> float:
    """`statistics.median`, without the `fractions` and `decimal` that module loads (half
    a megabyte the service does not otherwise hold)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _no_new_upload(device: _Device, now: float) -> None:
    expected, period = device.expected_upload, device.period
    assert expected is not None and period is not None
    if device.state == "stalled" or now < expected + device.delay - COALESCE:
        return  # a call for another device, or polling while uploads have stopped
    device.early_calls.append(now)
    device.retries += 1
    # After a missed upload, one try per upload: uploads that stop cost no retries.
    retries = MAX_RETRIES if device.misses_in_a_row == 0 else 0
    if device.retries <= retries and now + RETRY_STEP < expected + period / 2:
        return
    # Given up on this upload: wait for the next one of the rhythm, never a burst.
    device.retries = 0
    device.misses_in_a_row += 1
    device.missed += 1
    while (expected := expected + period) + device.delay <= now:
        device.missed += 1


def _plan(device: _Device, now: float, fallback: float) -> None:
    expected = device.expected_upload
    if expected is None or device.state == "stalled":
        device.next_call = now + fallback
        return
    planned = now + RETRY_STEP if device.retries else expected + device.delay
    device.next_call = max(planned, now + MIN_GAP)


def _margin(device: _Device) -> float:
    """How far past a too-late upload to aim next: wider for slower rhythms, whose lag
    budget is wider, so fewer first tries come too early."""
    return max(DELAY_UP, (device.period or 0.0) * MARGIN_PER_PERIOD)
