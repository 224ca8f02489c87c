"""Token files through the exporter process: Go files, rotation under short lifetimes,
SIGTERM and restart, corrupt files, and the flush command."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import REPO, ExporterProcess, metric_value, seed_token

PARIS = timezone(timedelta(hours=1))


def go_expiry(moment: datetime) -> str:
    """Go's time.Time.MarshalJSON: RFC 3339 with nanoseconds and the local offset."""
    local = moment.astimezone(PARIS)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}267+01:00"


def write_go_file(cloud: FakeNetatmoCloud, path: Path, expires_in: float) -> dict[str, object]:
    grant = cloud.issue_tokens()
    expiry = datetime.now(PARIS) + timedelta(seconds=expires_in)
    path.write_text(json.dumps({
        "access_token": grant["access_token"], "token_type": "Bearer",
        "refresh_token": grant["refresh_token"], "expiry": go_expiry(expiry)}))
    path.chmod(0o600)
    return grant


def assert_demo_metrics(body: str) -> None:
    assert metric_value(body, "netatmo_up") == 1.0
    assert metric_value(body, "netatmo_sensor_temperature_celsius", module="Salon") == 21.5
    assert metric_value(body, "netatmo_sensor_co2_ppm", module="Salle de jeux") == 1210.0


@pytest.mark.parametrize("expires_in", [3 * 3600.0, -3600.0])
def test_go_exporter_token_file_leads_to_metrics(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
    exporters: list[ExporterProcess], expires_in: float
) -> None:
    grant = write_go_file(cloud, token_path, expires_in)
    if expires_in < 0:
        cloud.expire_access_tokens()
    exporter = ExporterProcess(exporter_args(cloud, token_path), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)

    assert_demo_metrics(exporter.get("/metrics")[1])
    assert cloud.count("refresh_grants") == (0 if expires_in > 0 else 1)
    assert cloud.count("invalid_grant") == 0
    assert exporter.terminate() == 0
    saved = json.loads(token_path.read_text())
    assert saved["refresh_token"] in cloud.valid_refresh_tokens()
    if expires_in > 0:
        assert saved["refresh_token"] == grant["refresh_token"]


def test_refresh_token_only_file_leads_to_metrics_in_one_refresh(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    token_path.write_text(json.dumps({"refresh_token": cloud.mint_refresh_token()}))
    exporter = ExporterProcess(exporter_args(cloud, token_path), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)

    assert_demo_metrics(exporter.get("/metrics")[1])
    assert cloud.count("refresh_grants") == 1
    assert cloud.count("getstationsdata") == 1
    saved = json.loads(token_path.read_text())
    assert saved["refresh_token"] in cloud.valid_refresh_tokens()
    assert saved["access_token"] in cloud.valid_access_tokens()


def test_four_second_tokens_for_a_minute_then_sigterm_and_restart(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    cloud.set_token_lifetime(4)
    seed_token(cloud, token_path, refresh_only=True)
    args = exporter_args(cloud, token_path, "--refresh-interval", "1s", "--log-level", "debug")
    exporter = ExporterProcess(args, tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)
    up_seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(5)  # the point: a real minute of 4 s tokens, netatmo_up seen every 5 s
        up_seen.append(metric_value(exporter.get("/metrics")[1], "netatmo_up"))

    assert exporter.terminate() == 0
    assert cloud.count("invalid_grant") == 0
    assert cloud.count("refresh_grants") >= 8
    assert up_seen.count(1.0) >= len(up_seen) - 1
    saved = json.loads(token_path.read_text())
    assert cloud.valid_refresh_tokens() == {saved["refresh_token"]}
    assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600
    lines = exporter.logs().splitlines()
    assert any("event=signal_received" in line for line in lines)
    secrets = cloud.issued_secrets()
    assert [s for s in secrets if any(s in line for line in lines)] == []
    records = cloud.requests()
    assert [r.target for r in records if any(s in r.target for s in secrets)] == []
    assert all(r.has_authorization for r in records if r.endpoint.startswith("get"))
    assert cloud.count("token_in_query") == 0

    grants_before = cloud.count("refresh_grants")
    restarted = ExporterProcess(exporter_args(cloud, token_path), tmp_path)
    exporters.append(restarted)
    restarted.start(wait_ready=True)
    assert metric_value(restarted.get("/metrics")[1], "netatmo_up") == 1.0
    assert cloud.count("code_grants") == 0
    assert cloud.count("invalid_grant") == 0
    assert cloud.count("refresh_grants") <= grants_before + 1
    assert restarted.terminate() == 0


def test_corrupt_token_file_is_kept_and_reported(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    garbage = b'{"access_token": "abc", "refresh_token": "de'
    token_path.write_bytes(garbage)
    exporter = ExporterProcess(exporter_args(cloud, token_path), tmp_path)
    exporters.append(exporter)
    exporter.start()

    kept = list(tmp_path.glob("token.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == garbage
    status, page = exporter.get("/")
    assert status == 200
    assert "Not authorized" in page and kept[0].name in page
    body = exporter.get("/metrics")[1]
    assert metric_value(body, "netatmo_up") == 0.0
    assert metric_value(body, "netatmo_exporter_authorization_state",
                        state="needs_authorization") == 1.0
    assert exporter.get("/-/ready")[0] == 503
    assert exporter.proc is not None and exporter.proc.poll() is None
    assert exporter.terminate() == 0
    log = exporter.logs()
    assert "event=token_file_corrupt" in log and kept[0].name in log
    assert kept[0].read_bytes() == garbage
    assert not token_path.exists()
    assert cloud.count("token") == 0


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netatmo_exporter", *args],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_flush_writes_the_running_exporters_token(
    cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, exporters: list[ExporterProcess]
) -> None:
    socket_path = tmp_path / "control.sock"
    seed_token(cloud, token_path, refresh_only=True)
    exporter = ExporterProcess(
        exporter_args(cloud, token_path, "--control-socket", str(socket_path)), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)
    token_path.unlink()

    result = run_cli("flush", "--control-socket", str(socket_path))

    assert result.returncode == 0, result.stderr
    assert str(token_path) in result.stdout
    saved = json.loads(token_path.read_text())
    assert cloud.valid_refresh_tokens() == {saved["refresh_token"]}
    assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600
    assert exporter.terminate() == 0
    assert not socket_path.exists()


def test_flush_without_a_running_exporter(tmp_path: Path) -> None:
    result = run_cli("flush", "--control-socket", str(tmp_path / "absent.sock"))

    assert result.returncode == 0
    assert "not running" in result.stdout
