"""Load never reaches Netatmo: one refresh per expiry, one data fetch per interval."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud, Fault
from tests.conftest import exporter_args
from tests.robustness.conftest import StartExporter
from tests.support.harness import ExporterProcess, http_get, metric_value, seed_token, wait_until

DATA_ENDPOINTS = ("getstationsdata", "gethomecoachsdata")


def _data_calls(cloud: FakeNetatmoCloud) -> int:
    return sum(cloud.count(endpoint) for endpoint in DATA_ENDPOINTS)


def test_concurrent_callers_around_expiry_cause_one_refresh(
    cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    cloud.set_token_lifetime(3.0)
    seed_token(cloud, token_path)
    cloud.set_token_lifetime(3600.0)
    exporter = start_exporter("--refresh-interval", "1h")
    exporter.wait_for_metric("netatmo_up", 1.0)
    tokens = exporter.app.tokens
    expires_at = tokens.status().expires_at
    assert expires_at is not None and cloud.count("refresh_grants") == 0
    time.sleep(max(0.0, expires_at - 0.3 - time.time()) + 0.05)  # inside the margin
    callers = 24
    barrier = threading.Barrier(callers)

    def use_token(index: int) -> str | int:
        barrier.wait(5.0)
        if index % 3 == 0:
            return tokens.access_token()
        if index % 3 == 1:
            exporter.app.refresher.loop.wake()
            return exporter.get("/metrics")[0]
        return exporter.get("/")[0]

    with ThreadPoolExecutor(callers) as pool:
        answers = list(pool.map(use_token, range(callers)))
    wait_until("woken refresh", lambda: cloud.count("data_ok") >= 4, 5.0)

    access_tokens = {answer for answer in answers if isinstance(answer, str)}
    assert cloud.count("refresh_grants") == 1
    assert cloud.count("invalid_grant") == 0
    assert len(access_tokens) == 1 and access_tokens <= cloud.valid_access_tokens()
    assert {answer for answer in answers if isinstance(answer, int)} == {200}


def test_scrape_storm_makes_no_extra_data_calls(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    seed_token(cloud, token_path)
    interval, clients, storm_seconds = 2.0, 50, 10.0
    exporter = ExporterProcess(
        exporter_args(cloud, token_path, "--refresh-interval", "2s"), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)
    before = _data_calls(cloud)
    started = time.monotonic()
    deadline = started + storm_seconds

    def scrape_until_deadline(_: int) -> list[int]:
        statuses = []
        while time.monotonic() < deadline:
            statuses.append(http_get(exporter.url + "/metrics", timeout=10.0)[0])
        return statuses

    with ThreadPoolExecutor(clients) as pool:
        statuses = [s for batch in pool.map(scrape_until_deadline, range(clients)) for s in batch]
    elapsed = time.monotonic() - started
    calls = _data_calls(cloud) - before
    allowed_refreshes = int(elapsed / interval) + 1
    print(f"\nscrape storm: {len(statuses)} scrapes by {clients} clients in {elapsed:.1f}s, "
          f"{calls} data calls (at most {allowed_refreshes * len(DATA_ENDPOINTS)} allowed)")

    assert len(statuses) >= clients and set(statuses) == {200}
    assert 0 < calls <= allowed_refreshes * len(DATA_ENDPOINTS)


@pytest.mark.parametrize("status", [403, 429])
def test_rate_limit_answers_back_the_exporter_off(
    status: int, cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    seed_token(cloud, token_path)
    exporter = start_exporter("--refresh-interval", "500ms")
    exporter.wait_for_metric("netatmo_up", 1.0)
    window = 4.0

    calm_start = cloud.count("getstationsdata")
    time.sleep(window)  # the point: the process's call rate over real seconds, calm then limited
    calm_calls = cloud.count("getstationsdata") - calm_start
    cloud.inject("getstationsdata", Fault.rate_limited(status), times=None)
    limited_start = cloud.count("getstationsdata")
    time.sleep(window)
    limited_calls = cloud.count("getstationsdata") - limited_start
    _, body = exporter.get("/metrics")

    assert limited_calls < calm_calls / 2
    assert metric_value(body, "netatmo_up") == 0.0
    errors = metric_value(body, "netatmo_refresh_errors_total", reason="rate_limited")
    assert errors is not None and errors >= 1
    assert exporter.app.refresher.state().status.backoff_until is not None
