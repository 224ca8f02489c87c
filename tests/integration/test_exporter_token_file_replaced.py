"""Another program (the headless `login`, a copied Go token file) may write the token file
while the exporter runs: the newer authorization is adopted, never buried by our write."""

from __future__ import annotations

import json
import time
from pathlib import Path

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import ExporterProcess, metric_value, seed_token


def test_unauthorized_exporter_adopts_a_token_written_by_login(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    exporter = ExporterProcess(exporter_args(cloud, token_path), tmp_path)
    exporters.append(exporter)
    exporter.start()
    assert metric_value(exporter.get("/metrics")[1], "netatmo_up") == 0.0

    seed_token(cloud, token_path)
    exporter.wait_for("/-/ready", timeout=15.0)

    assert metric_value(exporter.get("/metrics")[1], "netatmo_up") == 1.0
    assert "event=token_file_replaced" in exporter.logs()
    assert exporter.terminate() == 0


def test_shutdown_flush_keeps_the_token_another_program_wrote(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    seed_token(cloud, token_path)
    exporter = ExporterProcess(exporter_args(cloud, token_path, "--refresh-interval", "10m"),
                               tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)
    time.sleep(0.05)

    login = seed_token(cloud, token_path)
    assert exporter.terminate() == 0

    assert json.loads(token_path.read_text())["refresh_token"] == login["refresh_token"]
    assert "event=token_file_replaced" in exporter.logs()
