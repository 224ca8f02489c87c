"""Counters of Netatmo requests and refresh errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from netatmo_exporter.adapters.metrics.weather_metrics import COUNTER_METRICS
from netatmo_exporter.domain.read_model import ReadService, ServiceReading

# Series exported at 0 before their first increment, so that `increase()` in an alert sees
# the first one too (a counter series born at 1 has no earlier sample to compare with).
ALERTED_REQUESTS = tuple(
    (endpoint, outcome)
    for endpoint in ("token", "getstationsdata", "gethomecoachsdata")
    for outcome in ("ok", "rate_limited")
)
ALERTED_REFRESH_ERRORS = ("rate_limited",)


class ApiCounterCollector(Collector):
    """Counters of Netatmo requests and refresh errors, built per scrape from plain counts so
    that no `_created` series appear whatever the prometheus_client version. The refresh
    errors are the weather state's of the scrape's one reading."""

    def __init__(self, read: ReadService,
                 request_counts: Callable[[], dict[tuple[str, str], int]],
                 alerted: tuple[tuple[str, str], ...] = ALERTED_REQUESTS) -> None:
        self._read = read
        self._request_counts = request_counts
        self._alerted = alerted

    def describe(self) -> Iterator[Metric]:
        return (spec.family() for spec in COUNTER_METRICS.values())

    def collect(self) -> Iterator[Metric]:
        return self.render(self._read())

    def render(self, reading: ServiceReading) -> Iterator[Metric]:
        requests = COUNTER_METRICS["requests"].counter()
        counts = {**dict.fromkeys(self._alerted, 0), **self._request_counts()}
        for (endpoint, outcome), count in sorted(counts.items()):
            requests.add_metric([endpoint, outcome], float(count))
        yield requests
        errors = COUNTER_METRICS["errors"].counter()
        reasons = {**dict.fromkeys(ALERTED_REFRESH_ERRORS, 0),
                   **reading.weather.error_counts}
        for reason, count in sorted(reasons.items()):
            errors.add_metric([reason], float(count))
        yield errors
