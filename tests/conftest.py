from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud, demo_account
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, ExporterProcess


@pytest.fixture
def cloud() -> Iterator[FakeNetatmoCloud]:
    """A simulated Netatmo cloud with the frozen demo account."""
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=demo_account(frozen=True)) as fake:
        yield fake


@pytest.fixture
def token_path(tmp_path: Path) -> Path:
    return tmp_path / "token.json"


@pytest.fixture
def exporters(tmp_path: Path) -> Iterator[list[ExporterProcess]]:
    """Collects exporter processes a test starts and ends each one by its PID."""
    started: list[ExporterProcess] = []
    yield started
    for exporter in started:
        if exporter.proc is not None and exporter.proc.poll() is None:
            exporter.kill()


def exporter_args(cloud: FakeNetatmoCloud, token_path: Path, *extra: str) -> list[str]:
    return ["--api-url", cloud.base_url, "--token-file", str(token_path),
            "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, *extra]
