"""What one scrape or one page shows, read once: the weather state, the token's facts and
the Energy state side by side, so that no family or line of it comes from another moment.

Each part is published whole by its owner (the refresher, the token manager, the Energy
poller); a reader takes one `ServiceReading` and renders only from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netatmo_exporter.domain.authorization.tokens import TokenStatus
from netatmo_exporter.domain.energy.poller import EnergyState
from netatmo_exporter.domain.weather.refresher import WeatherState


@dataclass(frozen=True)
class ServiceReading:
    weather: WeatherState
    token: TokenStatus
    energy: EnergyState | None = None
    """None when the Energy poller does not run."""


ReadService = Callable[[], ServiceReading]
"""The port collectors and pages read through: one call, one reading."""


def service_reader(weather: Callable[[], WeatherState], token: Callable[[], TokenStatus],
                   energy: Callable[[], EnergyState] | None = None) -> ReadService:
    def read() -> ServiceReading:
        return ServiceReading(weather(), token(), None if energy is None else energy())

    return read
