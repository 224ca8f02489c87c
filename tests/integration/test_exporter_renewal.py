"""The access token is renewed when it falls due, not only when data is fetched, so it
never lapses between two fetches of a long refresh interval."""

from __future__ import annotations

import time
from pathlib import Path

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import ExporterProcess, metric_value, seed_token


def test_token_renewed_between_data_fetches(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    cloud.set_token_lifetime(3.0)
    seed_token(cloud, token_path)
    exporter = ExporterProcess(
        exporter_args(cloud, token_path, "--refresh-interval", "10m"), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)

    valid_samples = []
    deadline = time.monotonic() + 8.0
    while time.monotonic() < deadline:
        _, body = exporter.get("/metrics")
        valid_samples.append(metric_value(body, "netatmo_exporter_token_valid"))
        time.sleep(0.25)

    assert valid_samples and all(value == 1.0 for value in valid_samples)
    assert cloud.count("refresh_grants") >= 2
    assert cloud.count("getstationsdata") == 1
    assert cloud.count("invalid_grant") == 0
    assert exporter.terminate() == 0
