"""One exposed metric family as the docs table lists it and a collector emits it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

LABELS = ("module", "station", "home")

MetricType = Literal["gauge", "counter", "info"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One exposed metric family, as the docs table lists it and the collector emits it."""

    name: str
    kind: MetricType
    unit: str
    text: str
    labels: tuple[str, ...] = LABELS
    go: bool = False

    def family(self) -> Metric:
        if self.kind == "counter":
            return CounterMetricFamily(self.name.removesuffix("_total"), self.text,
                                       labels=list(self.labels))
        if self.kind == "info":
            return InfoMetricFamily(self.name.removesuffix("_info"), self.text,
                                    labels=list(self.labels))
        return GaugeMetricFamily(self.name, self.text, labels=list(self.labels))

    def gauge(self) -> GaugeMetricFamily:
        family = self.family()
        assert isinstance(family, GaugeMetricFamily), self.name
        return family

    def counter(self) -> CounterMetricFamily:
        family = self.family()
        assert isinstance(family, CounterMetricFamily), self.name
        return family

    def info(self) -> InfoMetricFamily:
        family = self.family()
        assert isinstance(family, InfoMetricFamily), self.name
        return family


def metric(name: str, unit: str, text: str, labels: tuple[str, ...] = LABELS,
           kind: MetricType = "gauge", go: bool = False) -> MetricSpec:
    return MetricSpec(name, kind, unit, text, labels, go)
