"""The exporter process against the simulated cloud: token file in, metrics out."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import REPO, ExporterProcess, metric_value, seed_token


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


def test_tells_systemd_it_is_ready_once_listening(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    """Type=notify: READY=1 once the socket answers, STOPPING=1 at SIGTERM."""
    seed_token(cloud, token_path, refresh_only=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(tmp_path / "notify"))
        manager.settimeout(20.0)
        exporter = ExporterProcess(exporter_args(cloud, token_path), tmp_path,
                                   env={"NOTIFY_SOCKET": str(tmp_path / "notify")})
        exporters.append(exporter)
        exporter.start()

        assert manager.recv(4096) == b"READY=1"
        assert exporter.get("/-/healthy")[0] == 200
        assert exporter.terminate() == 0
        assert manager.recv(4096) == b"STOPPING=1"


def test_a_wrong_setting_exits_78_without_readiness(tmp_path: Path, token_path: Path) -> None:
    """The unit lists 78 in RestartPreventExitStatus=: failed at once, not restarted."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(tmp_path / "notify"))
        manager.setblocking(False)
        result = subprocess.run(
            [sys.executable, "-m", "netatmo_exporter", "--token-file", str(token_path)],
            env={**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_SOCKET": str(tmp_path / "notify"),
                 "NETATMO_CLIENT_ID": "id", "NETATMO_CLIENT_SECRET": "secret",
                 "NETATMO_REFRESH_INTERVAL": "8minutes"},
            capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 78
        assert result.stderr.strip().splitlines() == [
            "netatmo-exporter: configuration error: --refresh-interval "
            "(NETATMO_REFRESH_INTERVAL): invalid duration '8minutes' (use Go syntax such as "
            "90s, 8m or 1h30m)"]
        with pytest.raises(BlockingIOError):
            manager.recv(4096)
