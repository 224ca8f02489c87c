"""The service's call budget for the account, and its pollers waiting for room in it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from netatmo_exporter.adapters.metrics.weather_metrics import BUDGET_METRIC, BUDGET_WAIT_METRICS
from netatmo_exporter.domain.call_policy import BudgetUse, BudgetWaitState

BUDGET_CALLERS = ("backfill", "energy", "weather")
"""Exported at 0 before their first call, so that a panel or alert has its series."""
BUDGET_WINDOWS = (("10s", "by_caller_10s"), ("1h", "by_caller"))


POLLERS = ("energy", "weather")


class BudgetCollector(Collector):
    """`netatmo_exporter_api_budget_calls{caller,window}`: the service's budget for the
    account as it stands, the calls a backfill booked through the control socket included;
    `netatmo_exporter_api_budget_waiting{caller}` and `..._wait_seconds_total{caller}`: the
    service's pollers waiting for room in it."""

    def __init__(self, use: Callable[[], BudgetUse],
                 waits: Callable[[], BudgetWaitState] = BudgetWaitState) -> None:
        self._use = use
        self._waits = waits

    def describe(self) -> Iterator[Metric]:
        yield BUDGET_METRIC.family()
        for spec in BUDGET_WAIT_METRICS.values():
            yield spec.family()

    def collect(self) -> Iterator[Metric]:
        use = self._use()
        family = BUDGET_METRIC.gauge()
        for window, field in BUDGET_WINDOWS:
            counts: dict[str, int] = {**dict.fromkeys(BUDGET_CALLERS, 0),
                                      **dict(getattr(use, field))}
            for caller, count in sorted(counts.items()):
                family.add_metric([caller, window], float(count))
        yield family
        waits = self._waits()
        waiting = {wait.caller for wait in waits.waiting}
        waited = {**dict.fromkeys(POLLERS, 0.0), **dict(waits.waited)}
        gauge = BUDGET_WAIT_METRICS["waiting"].gauge()
        counter = BUDGET_WAIT_METRICS["waited"].counter()
        for caller in sorted(waited):
            gauge.add_metric([caller], 1.0 if caller in waiting else 0.0)
            counter.add_metric([caller], waited[caller])
        yield gauge
        yield counter
