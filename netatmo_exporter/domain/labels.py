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
    taken = {labels for labels, count in seen.items() if count == 1}
    result = []
    for station, module, labels in rows:
        if seen[labels] > 1:
            labels = _free_labels(labels, module.id, taken)
            taken.add(labels)
        result.append((station, module, labels))
    return result


def _free_labels(labels: ModuleLabels, module_id: str, taken: set[ModuleLabels]) -> ModuleLabels:
    # The id suffix alone could still meet a module really named "Name (id)".
    candidate = ModuleLabels(f"{labels.module} ({module_id})", labels.station, labels.home)
    n = 2
    while candidate in taken:
        candidate = ModuleLabels(f"{labels.module} ({module_id}) #{n}", labels.station,
                                 labels.home)
        n += 1
    return candidate
