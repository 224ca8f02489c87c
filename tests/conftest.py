from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud, demo_account
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, ExporterProcess, exporter_args

__all__ = ["exporter_args"]  # tests import it from here too


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

