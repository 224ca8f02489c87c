"""A stop never waits on Netatmo: `flush` (ExecStop) answers while a renewal hangs, and
SIGTERM ends the process within 10 s (systemd kills at 30 s) while a data call or a
renewal hangs, the token on disk still valid at the cloud. A renewal whose answer arrives
during the stop is written first."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.adapters.system.control_client import ServiceTokens
from netatmo_exporter.domain.errors import NetatmoError
from netatmo_exporter.simulator import FakeNetatmoCloud, Fault
from tests.conftest import exporter_args
from tests.integration.test_exporter_tokens import run_cli
from tests.support.harness import ExporterProcess, in_background, seed_token, wait_until

STOP_WITHIN = 10.0


@pytest.fixture
def socket_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ctl") as name:  # a short unix socket path
        yield Path(name) / "control.sock"


def wait_for_count(cloud: FakeNetatmoCloud, name: str, count: int = 1,
                   timeout: float = 20.0) -> None:
    wait_until(f"{name} request at the cloud", lambda: cloud.count(name) >= count, timeout,
               every=0.02)


def refresh_token_on_disk(token_path: Path) -> str:
    return str(json.loads(token_path.read_text())["refresh_token"])


def start(cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
          exporters: list[ExporterProcess], *extra: str) -> ExporterProcess:
    exporter = ExporterProcess(exporter_args(cloud, token_path, *extra), tmp_path)
    exporters.append(exporter)
    return exporter.start()


def test_flush_answers_while_a_renewal_hangs_at_netatmo(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
        exporters: list[ExporterProcess], socket_path: Path) -> None:
    seeded = seed_token(cloud, token_path)
    exporter = start(cloud, token_path, tmp_path, exporters,
                     "--control-socket", str(socket_path), "--refresh-interval", "1h")
    backfill = ServiceTokens(str(socket_path), timeout=60.0)
    backfill.reject_access_token(backfill.access_token())  # the next one is renewed
    cloud.inject("token", Fault.http_500(wait=40.0), times=None)
    in_background(backfill.access_token, NetatmoError)
    wait_for_count(cloud, "token")

    result = run_cli("flush", "--control-socket", str(socket_path))  # deadline: 10 s

    assert result.returncode == 0, result.stderr
    assert str(token_path) in result.stdout
    assert exporter.terminate(timeout=STOP_WITHIN) == 0
    assert refresh_token_on_disk(token_path) == seeded["refresh_token"]
    assert seeded["refresh_token"] in cloud.valid_refresh_tokens()


def test_sigterm_while_a_data_call_hangs_ends_the_process_with_the_token_on_disk(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
        exporters: list[ExporterProcess]) -> None:
    seeded = seed_token(cloud, token_path)
    cloud.inject("getstationsdata", Fault.http_500(wait=60.0), times=None)
    exporter = start(cloud, token_path, tmp_path, exporters)
    wait_for_count(cloud, "getstationsdata")

    assert exporter.terminate(timeout=STOP_WITHIN) == 0

    assert "abandoned=refresher" in exporter.logs()
    assert refresh_token_on_disk(token_path) == seeded["refresh_token"]
    assert seeded["refresh_token"] in cloud.valid_refresh_tokens()


def test_sigterm_while_a_renewal_hangs_ends_the_process_with_the_token_on_disk(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
        exporters: list[ExporterProcess]) -> None:
    seeded = seed_token(cloud, token_path, refresh_only=True)  # renewed at once
    cloud.inject("token", Fault.http_500(wait=60.0), times=None)
    exporter = start(cloud, token_path, tmp_path, exporters)
    wait_for_count(cloud, "token")

    assert exporter.terminate(timeout=STOP_WITHIN) == 0

    assert refresh_token_on_disk(token_path) == seeded["refresh_token"]
    assert seeded["refresh_token"] in cloud.valid_refresh_tokens()
    assert "Traceback" not in exporter.logs()


def test_sigterm_during_a_renewal_whose_answer_is_arriving_writes_it_first(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
        exporters: list[ExporterProcess]) -> None:
    # Netatmo has rotated the refresh token; its answer takes two more seconds.
    seeded = seed_token(cloud, token_path, refresh_only=True)
    cloud.inject("token", Fault.delay(2.0))
    exporter = start(cloud, token_path, tmp_path, exporters)
    wait_for_count(cloud, "token")

    assert exporter.terminate(timeout=STOP_WITHIN) == 0

    rotated = refresh_token_on_disk(token_path)
    assert rotated != seeded["refresh_token"]
    assert cloud.valid_refresh_tokens() == {rotated}
