"""The count of what the web edge turned away, by reason, and its collector."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from netatmo_exporter.adapters.metrics.spec import metric

# Why the edge turned a request or a connection away; all are exposed from the start.
REFUSAL_REASONS = (
    "password_wrong",  # a basic-auth credential that does not match
    "password_busy",  # a password check waited too long for its turn (429)
    "connection_per_address",  # a connection closed: its address held too many
    "token_call_limited",  # a pasted token or callback over the per-minute budget (429)
    "authorizations_pending",  # too many authorizations started and not finished (429)
)
REFUSALS_METRIC = metric(
    "netatmo_exporter_http_refusals_total", "refusals",
    "Requests and connections the web edge turned away, by reason: password_wrong, "
    "password_busy, connection_per_address, token_call_limited, authorizations_pending",
    ("reason",), "counter")
class RefusalCounts:
    """Thread-safe counts by reason, read by the collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(REFUSAL_REASONS, 0)

    def add(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class RefusalCollector(Collector):
    """`netatmo_exporter_http_refusals_total{reason}`, one series per reason, zero from the
    start so that an alert on its rate works before the first refusal."""

    def __init__(self, counts: RefusalCounts) -> None:
        self._counts = counts

    def describe(self) -> Iterator[Metric]:
        yield REFUSALS_METRIC.family()

    def collect(self) -> Iterator[Metric]:
        family = REFUSALS_METRIC.family()
        assert isinstance(family, CounterMetricFamily)
        for reason, count in sorted(self._counts.counts().items()):
            family.add_metric([reason], float(count))
        yield family
