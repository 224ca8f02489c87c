"""Label values for modules, as the Go exporter chose them, without ever colliding."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from netatmo_exporter.domain.model import Module, Station


@dataclass(frozen=True, slots=True)
class ModuleLabels:
    module: str
    station: str
    home: str


def module_label(module: Module) -> str:
    return module.name if module.name else f"id-{module.id}"


def label_modules(stations: Iterable[Station]) -> list[tuple[Station, Module, ModuleLabels]]:
    """Pair every module with its labels; modules that would share a label set get their id
    appended, so the scrape never fails on duplicate series."""
    rows = [
        (station, module,
         ModuleLabels(module_label(module), station.label, station.home_name or ""))
        for station in stations
        for module in station.all_modules
    ]
    seen = Counter(labels for _, _, labels in rows)
    return [
        (
            station,
            module,
            labels
            if seen[labels] == 1
            else ModuleLabels(f"{labels.module} ({module.id})", labels.station, labels.home),
        )
        for station, module, labels in rows
    ]
