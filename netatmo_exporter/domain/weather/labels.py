"""Label values for modules, as the Go exporter chose them, without ever colliding."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netatmo_exporter.domain.weather.model import Module, Station


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
    pairs = [(station, module) for station in stations for module in station.all_modules]
    labels = tell_apart(
        [(module_label(module), station.label, station.home_name or "") for station, module
         in pairs],
        [module.id for _, module in pairs])
    return [(station, module, ModuleLabels(*values))
            for (station, module), values in zip(pairs, labels, strict=True)]


def tell_apart(label_sets: Sequence[tuple[str, ...]], ids: Sequence[str]) -> list[tuple[str, ...]]:
    """Label sets that occur more than once get the item's id appended to their first value
    (the name); the others are kept as they are."""
    seen = Counter(label_sets)
    taken = {labels for labels, count in seen.items() if count == 1}
    result = []
    for labels, ident in zip(label_sets, ids, strict=True):
        if seen[labels] > 1:
            labels = _free_labels(labels, ident, taken)
            taken.add(labels)
        result.append(labels)
    return result


def _free_labels(labels: tuple[str, ...], ident: str, taken: set[tuple[str, ...]]
                 ) -> tuple[str, ...]:
    # The id suffix alone could still meet an item really named "Name (id)".
    name, rest = labels[0], labels[1:]
    candidate = (f"{name} ({ident})", *rest)
    n = 2
    while candidate in taken:
        candidate = (f"{name} ({ident}) #{n}", *rest)
        n += 1
    return candidate
