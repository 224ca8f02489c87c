"""The history follower's metrics, rendered from its published `HistoryState`:

    netatmo_exporter_history_samples_written_total 5328
    netatmo_exporter_history_write_errors_total{reason="unreachable"} 3
    netatmo_exporter_history_checkpoint_age_seconds 1742
    netatmo_exporter_history_last_write_timestamp_seconds 1765100712
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from netatmo_exporter.adapters.metrics.spec import MetricSpec, metric
from netatmo_exporter.domain.history.follower import HistoryState
from netatmo_exporter.domain.history.remote_write import RECEIVER_REASONS
from netatmo_exporter.domain.ports import Clock

SAMPLES_WRITTEN = metric(
    "netatmo_exporter_history_samples_written_total", "samples",
    "Stored readings the history follower wrote to the remote-write receiver (and it took)",
    (), "counter")
WRITE_ERRORS = metric(
    "netatmo_exporter_history_write_errors_total", "writes",
    "Writes the remote-write receiver did not take, by reason: " + ", ".join(RECEIVER_REASONS),
    ("reason",), "counter")
CHECKPOINT_AGE = metric(
    "netatmo_exporter_history_checkpoint_age_seconds", "seconds",
    "Seconds since the time up to which every reading Netatmo stored is written, for the "
    "module or room furthest behind: about --history.interval when all is well", ())
LAST_WRITE = metric(
    "netatmo_exporter_history_last_write_timestamp_seconds", "Unix seconds",
    "When the remote-write receiver last took readings from the history follower", ())
HISTORY_METRICS: tuple[MetricSpec, ...] = (SAMPLES_WRITTEN, WRITE_ERRORS, CHECKPOINT_AGE,
                                           LAST_WRITE)


class HistoryCollector(Collector):
    def __init__(self, state: Callable[[], HistoryState], clock: Clock) -> None:
        self._state = state
        self._clock = clock

    def describe(self) -> Iterator[Metric]:
        for spec in HISTORY_METRICS:
            yield spec.family()

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        written = SAMPLES_WRITTEN.family()
        assert isinstance(written, CounterMetricFamily)
        written.add_metric([], float(state.samples_written))
        yield written
        errors = WRITE_ERRORS.family()
        assert isinstance(errors, CounterMetricFamily)
        for reason in RECEIVER_REASONS:
            errors.add_metric([reason], float(state.write_errors.get(reason, 0)))
        yield errors
        oldest = state.oldest_checkpoint()
        if oldest is not None:
            yield _gauge(CHECKPOINT_AGE, max(0.0, self._clock.now() - oldest))
        if state.last_write_at is not None:
            yield _gauge(LAST_WRITE, state.last_write_at)


def _gauge(spec: MetricSpec, value: float) -> GaugeMetricFamily:
    family = spec.family()
    assert isinstance(family, GaugeMetricFamily)
    family.add_metric([], value)
    return family
