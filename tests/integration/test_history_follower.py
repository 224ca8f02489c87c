"""The history follower end to end: `python -m netatmo_exporter` with
`--history.remote-write-url` against the simulated cloud, whose ten modules store a reading
every 10 s and upload every 20 s (two readings an upload), writing to Debian's Prometheus
(its receiver on, an out-of-order window) which scrapes the same exporter, and to Debian's
VictoriaMetrics. Every stored reading is read back at its time and value under the live
series' labels after a first start (3 h lookback), after the exporter was stopped and
started, while the receiver was down and after it came back, and after a SIGKILL in the
middle of a cycle; netatmo_up stays 1 while the exporter runs; the follower's calls stay
within its share of the hour."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netatmo_exporter.adapters.metrics.history_collector import HISTORY_METRICS
from netatmo_exporter.domain.history.follower import HOURLY_SHARE
from netatmo_exporter.simulator import (
    Cadence,
    FakeNetatmoCloud,
    History,
    scaled_rate_limits,
    ten_module_account,
)
from netatmo_exporter.simulator.history import today
from tests.conftest import exporter_args
from tests.integration.test_history_databases import HISTORY_FAMILIES, stored_readings
from tests.integration.test_promtool import DemoScrape, parse_scrape
from tests.support.harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    ExporterProcess,
    free_port,
    seed_token,
    wait_until,
)
from tests.support.tsdb import (
    Labels,
    PrometheusServer,
    Samples,
    prometheus_receiver,
    victoria_metrics,
)

STEP = 10
"""Seconds between two stored readings. The simulator stores them in real time, so the
sleeps of a few STEPs below are the point: the outages the follower must make up for."""
UPLOAD_PERIOD = 20.0
LOOKBACK = 3 * 3600
SOURCES = 10
SCOPES = "read_station read_homecoach"
HISTORY = '{__name__=~"' + "|".join(sorted(HISTORY_FAMILIES)) + '"}'


@dataclass
class Rig:
    cloud: FakeNetatmoCloud
    workdir: Path
    exporter: ExporterProcess
    checkpoint: Path
    running: list[tuple[float, float]] = field(default_factory=list)
    """When the exporter was ready, until it was stopped."""
    live: DemoScrape | None = None

    @property
    def extra_labels(self) -> tuple[tuple[str, str], ...]:
        return (("job", "netatmo"), ("instance", f"127.0.0.1:{self.exporter.port}"))

    def start(self, wait_ready: bool = True) -> float:
        started = time.time()
        self.exporter.start(wait_ready=wait_ready)
        if wait_ready:
            self.running.append((time.time(), math.inf))
        return started

    def stop(self) -> None:
        assert self.exporter.terminate() == 0, self.exporter.logs()
        self.running[-1] = (self.running[-1][0], time.time())

    def checkpoints(self) -> dict[str, int]:
        try:
            written: dict[str, int] = json.loads(self.checkpoint.read_text())["written_until"]
        except FileNotFoundError:
            return {}
        return written

    def caught_up(self, since: float, timeout: float = 120.0) -> int:
        """Waits until every module's readings up to about `since` are written; the time up
        to which all of them are."""
        def caught() -> int | None:
            written = self.checkpoints()
            if len(written) == SOURCES and min(written.values()) >= since - 2 * STEP:
                return min(written.values())
            return None
        return wait_until(f"catching up with {since}", caught, timeout, every=0.2,
                          detail=lambda: f"{self.checkpoints()}\n{self.exporter.logs()}")

    def scrape(self) -> DemoScrape:
        status, body = self.exporter.get("/metrics")
        assert status == 200
        return parse_scrape(body)

    def expected(self, begin: int, end: int) -> Samples:
        if self.live is None:
            self.live = self.scrape()
        return stored_readings(self.cloud.account, self.live, begin, end, self.extra_labels)


@contextmanager
def _rig(workdir: Path, receiver_url: str, *flags: str) -> Iterator[Rig]:
    history = History(anchor=today(), days=2, step=STEP)
    account = ten_module_account(history=history).with_cadence(Cadence(UPLOAD_PERIOD))
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=account,
                          rate_limits=scaled_rate_limits(1.0)) as cloud:
        token = workdir / "token.json"
        seed_token(cloud, token)
        exporter = ExporterProcess([], workdir)
        exporter.args = exporter_args(
            cloud, token, "--scope", SCOPES, "--history.remote-write-url",
            receiver_url, "--history.label", "job=netatmo", "--history.label",
            f"instance=127.0.0.1:{exporter.port}", "--history.interval", "10m", *flags)
        rig = Rig(cloud, workdir, exporter, workdir / "token.json.history.json")
        try:
            yield rig
        finally:
            if exporter.proc is not None and exporter.proc.poll() is None:
                exporter.kill()


def _missing(expected: Samples, found: Samples) -> dict[Labels, list[tuple[float, float]]]:
    """Readings of `expected` not in `found` at their time and value, by series."""
    missing = {}
    for labels, readings in expected.items():
        absent = sorted(set(readings) - set(found.get(labels, [])))
        if absent:
            missing[labels] = absent[:5]
    return missing


def _check_prometheus(rig: Rig, prometheus: PrometheusServer, begin: int, end: int) -> int:
    expected = rig.expected(begin, end)
    found = prometheus.samples(HISTORY)
    assert sum(len(readings) for readings in expected.values()) > 2_000
    assert _missing(expected, found) == {}
    return sum(len(readings) for readings in expected.values())


def _netatmo_up_while_running(rig: Rig, prometheus: PrometheusServer) -> list[float]:
    samples = prometheus.samples('netatmo_up{job="netatmo"}')
    (values,) = samples.values()
    return [value for at, value in values
            if any(start <= at <= stop for start, stop in rig.running)]


@contextmanager
def _prometheus(workdir: Path, port: int, exporter_port: int) -> Iterator[PrometheusServer]:
    with prometheus_receiver(workdir, "1d", scrape=("netatmo", f"127.0.0.1:{exporter_port}"),
                             port=port) as prometheus:
        yield prometheus


def test_every_stored_reading_reaches_prometheus_across_restarts_outages_and_a_kill(
        tmp_path: Path) -> None:
    port = free_port()

    with _rig(tmp_path, f"http://127.0.0.1:{port}/api/v1/write") as rig:
        exporter_port = rig.exporter.port
        # A first start: the last 3 hours, oldest first.
        with _prometheus(tmp_path, port, exporter_port) as prometheus:
            first = rig.start()
            end = rig.caught_up(first)
            begin = math.ceil(time.time() - LOOKBACK)
            _check_prometheus(rig, prometheus, begin, end)
            older = [t for readings in prometheus.samples(HISTORY).values()
                     for t, _ in readings if t < first - LOOKBACK - 1]
            assert older == []
            scrape = rig.scrape()
            assert scrape.value("netatmo_exporter_history_samples_written_total") > 0
            documented = {spec.name.removesuffix("_total"): (spec.kind, spec.text)
                          for spec in HISTORY_METRICS}
            assert {name: (scrape.types[name], scrape.helps[name])
                    for name in documented} == documented

            # Stopped for a while: the readings stored meanwhile come in after the start.
            rig.stop()
            time.sleep(3 * STEP)
            end = rig.caught_up(rig.start())
            _check_prometheus(rig, prometheus, begin, end)

            # The receiver down when the follower writes: nothing lost once it is back.
            rig.stop()
        time.sleep(2 * STEP)
        restarted = rig.start()
        _wait_for(lambda: (rig.scrape().value("netatmo_exporter_history_write_errors_total",
                                              reason="unreachable") or 0) > 0,
                  "a write refused while the receiver is down", rig)
        time.sleep(STEP)
        with _prometheus(tmp_path, port, exporter_port) as prometheus:
            end = rig.caught_up(restarted)
            _check_prometheus(rig, prometheus, begin, end)
            logs = rig.exporter.logs()
            assert logs.count("event=history_write_failed") == 1, logs
            assert "event=history_recovered what=receiver" in logs

            # Killed in the middle of a cycle: the next start sends what was not checkpointed.
            rig.stop()
            time.sleep(2 * STEP)
            before = os.stat(rig.checkpoint).st_mtime_ns
            rig.start(wait_ready=False)
            _wait_for(lambda: os.stat(rig.checkpoint).st_mtime_ns != before,
                      "a checkpoint written after the start", rig, pause=0.002)
            rig.exporter.kill()
            end = rig.caught_up(rig.start())
            total = _check_prometheus(rig, prometheus, begin, end)

            up = _netatmo_up_while_running(rig, prometheus)
            assert len(up) >= 4 and set(up) == {1.0}
            rig.stop()

    assert total > 10_000
    assert "event=history_fetch_failed" not in rig.exporter.logs()
    assert rig.cloud.count("rate_limited") == 0
    assert rig.cloud.count("getmeasure") <= HOURLY_SHARE


def test_victoria_metrics_takes_every_reading_once_per_time(tmp_path: Path) -> None:
    with victoria_metrics(tmp_path) as vm, _rig(tmp_path, vm.write_url,
                                                "--history.lookback", "1h") as rig:
        first = rig.start()
        rig.caught_up(first)
        rig.exporter.kill()  # its checkpoint may lag what VictoriaMetrics took: sent again
        time.sleep(2 * STEP)
        end = rig.caught_up(rig.start())
        begin = math.ceil(time.time() - 3600)

        found = vm.export(HISTORY)
        expected = rig.expected(begin, end)

    assert sum(len(readings) for readings in expected.values()) > 2_000
    within_12_digits: dict[Labels, Any] = {
        labels: [(t, pytest.approx(v, rel=1e-11)) for t, v in readings]
        for labels, readings in expected.items()}
    kept = {labels: sorted(set(samples)) for labels, samples in found.items()}
    assert {labels: [s for s in samples if begin <= s[0] <= end]
            for labels, samples in kept.items() if labels in expected} == within_12_digits
    assert all(len({t for t, _ in samples}) == len(samples) for samples in kept.values())


def _wait_for(condition: Callable[[], bool], what: str, rig: Rig, timeout: float = 60.0,
              pause: float = 0.2) -> None:
    wait_until(what, condition, timeout, every=pause, detail=rig.exporter.logs,
               ignoring=(OSError, AssertionError))
