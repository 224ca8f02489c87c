"""In-process exporters for the robustness tests: `build_app` with a real client whose
timeout and retry backoff are small, logs captured in memory."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from netatmo_exporter.adapters.netatmo.answer import DATA_DEADLINE
from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.entrypoints.bootstrap import Application, build_app
from netatmo_exporter.entrypoints.config import load_config
from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    ExporterProcess,
    authorized_process,
    http_get,
    metric_value,
    wait_until,
)

CLIENT_TIMEOUT = 0.5


class LogStream(io.StringIO):
    """A log sink several threads write to."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return super().write(text)

    def lines(self) -> list[str]:
        with self._lock:
            return self.getvalue().splitlines()


class RunningExporter:
    def __init__(self, app: Application, log: LogStream) -> None:
        self.app = app
        self.log = log
        self.stopped = False

    def stop(self) -> bool:
        if self.stopped:
            return True
        self.stopped = True
        return self.app.stop()

    @property
    def url(self) -> str:
        return self.app.url

    def get(self, path: str, **kwargs: object) -> tuple[int, str]:
        return http_get(self.url + path, **kwargs)  # type: ignore[arg-type]

    def metric(self, name: str, **labels: str) -> float | None:
        status, body = self.get("/metrics")
        assert status == 200
        return metric_value(body, name, **labels)

    def wait_for_metric(self, name: str, value: float, timeout: float = 15.0,
                        **labels: str) -> None:
        wait_until(f"{name}{labels} == {value}", lambda: self.metric(name, **labels) == value,
                   timeout, detail=lambda: "\n".join(self.log.lines()[-20:]))


StartExporter = Callable[..., RunningExporter]


@pytest.fixture
def start_exporter(cloud: FakeNetatmoCloud, token_path: Path) -> Iterator[StartExporter]:
    """Builds and starts exporters in this process; stops each at the end."""
    running: list[RunningExporter] = []

    def start(*extra: str, attempts: int = 2, token_file: Path = token_path,
              deadline: float = DATA_DEADLINE) -> RunningExporter:
        config = load_config(["--addr", "127.0.0.1:0",
                              *exporter_args(cloud, token_file, *extra)], {})
        client = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock(),
                               timeout=httpx.Timeout(CLIENT_TIMEOUT), attempts=attempts,
                               backoff=0.01, deadline=deadline)
        log = LogStream()
        exporter = RunningExporter(build_app(config, client=client, log_stream=log), log)
        exporter.app.start()
        running.append(exporter)
        return exporter

    yield start
    for exporter in running:
        exporter.stop()


@pytest.fixture
def exporter_process(cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
                     exporters: list[ExporterProcess]) -> ExporterProcess:
    """An authorized exporter process with the shipped limits, data fetched once an hour."""
    exporter = authorized_process(cloud, token_path, tmp_path)
    exporters.append(exporter)
    return exporter.start(wait_ready=True)
