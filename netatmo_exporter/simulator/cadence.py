"""Upload rhythm of simulated devices: when each one uploads and when the cloud shows it.

Device ``d`` uploads at ``origin + phase(d) + k * period`` (whole seconds: that is its
``last_status_store``), each device on its own phase. Upload ``k`` becomes visible through
the API ``delay`` plus up to ``jitter`` seconds later, and about one upload in
``miss_every`` never happens (a station that lost its wifi for a while). Everything is a
pure function of the device id, ``k`` and ``seed``, so a test or the benchmark can ask
when an upload was visible and compare with when the exporter showed it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Upload:
    device_id: str
    index: int
    stored_at: int
    """The upload's ``last_status_store``."""
    visible_at: float
    """When the cloud starts answering with it."""


@dataclass(frozen=True)
class Cadence:
    """Devices upload every ``period`` seconds; see the module docstring."""

    period: float
    delay: float = 3.0
    jitter: float = 4.0
    miss_every: int = 30
    seed: int = 0
    origin: float = 0.0

    def phase(self, device_id: str) -> float:
        return _draws(f"{self.seed}:phase:{device_id}").uniform(0, self.period)

    def upload(self, device_id: str, index: int) -> Upload | None:
        """Upload number ``index`` of the device, or None when that one is missed."""
        draw = _draws(f"{self.seed}:{device_id}:{index}")
        missed = self.miss_every > 0 and draw.random() < 1 / self.miss_every
        if missed:
            return None
        stored = int(self.origin + self.phase(device_id) + index * self.period)
        return Upload(device_id, index, stored, stored + self.delay + draw.uniform(0, self.jitter))

    def latest_visible(self, device_id: str, now: float) -> Upload | None:
        """The newest upload the cloud shows at ``now`` (None before the first one)."""
        index = math.floor((now - self.origin - self.phase(device_id)) / self.period)
        for k in range(index, max(index - 100, -1), -1):
            upload = self.upload(device_id, k)
            if upload is not None and upload.visible_at <= now:
                return upload
        return None

    def uploads(self, device_id: str, start: float, end: float) -> list[Upload]:
        """Every upload that became visible between ``start`` and ``end``."""
        first = math.floor((start - self.origin - self.phase(device_id)) / self.period) - 1
        last = math.ceil((end - self.origin - self.phase(device_id)) / self.period)
        found = [self.upload(device_id, k) for k in range(max(first, 0), last + 1)]
        return [u for u in found if u is not None and start <= u.visible_at < end]


def _draws(key: str) -> random.Random:
    """Reproducible draws for one key; a simulation, nothing secret."""
    return random.Random(key)  # noqa: S311
