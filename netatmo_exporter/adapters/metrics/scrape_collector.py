"""One scrape, one reading: the collectors of the service's state render from a single
`ServiceReading`, and families of one name are yielded once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from netatmo_exporter.domain.read_model import ReadService, ServiceReading


class ReadingRenderer(Protocol):
    def describe(self) -> Iterable[Metric]: ...

    def render(self, reading: ServiceReading) -> Iterable[Metric]: ...


class ScrapeCollector(Collector):
    """Reads the service once per scrape and has each part render that reading (the
    weather state, the token's facts, the Energy state of one moment). Two families of one
    name would make the exposition invalid, so samples of a shared name are joined into
    the first family (its help text wins)."""

    def __init__(self, read: ReadService, *parts: ReadingRenderer) -> None:
        self._read = read
        self._parts = parts

    def describe(self) -> Iterator[Metric]:
        described: dict[str, Metric] = {}
        for part in self._parts:
            for family in part.describe():
                described.setdefault(family.name, family)
        yield from described.values()

    def collect(self) -> Iterator[Metric]:
        reading = self._read()
        merged: dict[str, Metric] = {}
        for part in self._parts:
            for family in part.render(reading):
                first = merged.setdefault(family.name, family)
                if first is not family:
                    assert first.type == family.type, family.name
                    first.samples.extend(family.samples)
        yield from merged.values()
