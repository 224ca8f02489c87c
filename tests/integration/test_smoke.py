"""The exporter process against the simulated cloud: token file in, metrics out."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import ExporterProcess, metric_value, seed_token


def test_token_file_to_metrics_and_sigterm_flush(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    seed_token(cloud, token_path, refresh_only=True)
    exporter = ExporterProcess(exporter_args(cloud, token_path), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)

    status, body = exporter.get("/metrics")

    assert status == 200
    assert metric_value(body, "netatmo_up") == 1.0
    assert metric_value(body, "netatmo_sensor_temperature_celsius", module="Salon") == 21.5
    assert exporter.terminate() == 0
    saved = json.loads(token_path.read_text())
    assert saved["refresh_token"] in cloud.valid_refresh_tokens()
    assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600
