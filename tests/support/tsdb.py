"""Real time-series databases as test fixtures, each on 127.0.0.1 with a free port and a
temporary directory, ended by PID:

* :func:`prometheus_on_blocks` -- ``promtool tsdb create-blocks-from openmetrics
  --max-block-duration=744h FILE DIR`` (the command the backfill prints)
  (Debian's ``prometheus`` package), then a Prometheus started on DIR with a retention
  of 100 years (the default 15 days would delete older blocks at once), queried over its
  HTTP API (:meth:`PrometheusServer.samples` reads back every raw sample).
* :func:`prometheus_receiver` -- a Prometheus taking remote write
  (``--web.enable-remote-write-receiver``, optional) with an out-of-order window in its
  configuration (optional): what the history follower and ``backfill --remote-write``
  write to, at :attr:`PrometheusServer.write_url`.
* :func:`victoria_metrics` -- Debian's ``victoria-metrics`` started on its own data
  directory (not the packaged system service): :meth:`VictoriaMetrics.import_prometheus`
  posts a text exposition with millisecond timestamps, :meth:`VictoriaMetrics.export`
  reads the raw samples back after a forced flush.

Both read back as :data:`Samples`: ``{frozenset(labels, __name__ included): [(unix
seconds, value), ...]}``, times ascending, so a test compares the two stores and its
expectation with one ``==``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from netatmo_exporter.entrypoints.backfill import PROMTOOL_BLOCK_DURATION
from tests.support.harness import free_port, http_get, wait_until

Answer = dict[str, Any]
Labels = frozenset[tuple[str, str]]
Samples = dict[Labels, list[tuple[float, float]]]
RETENTION = "100y"
T = TypeVar("T")
EVERYTHING = "36500d"
"""A range selector reaching 100 years back: every sample of the blocks."""


def require_tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/local/bin:/usr/sbin")
    if path is None:
        pytest.fail(f"{name} not found on PATH: install Debian's prometheus and "
                    "victoria-metrics packages (scripts/test installs them)")
    return path


class Database:
    """A time-series database at `url`, taking remote write at `write_url`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.write_url = f"{url}/api/v1/write"


class PrometheusServer(Database):

    def api(self, path: str, **params: str) -> Answer:
        status, body = http_get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}",
                                timeout=30.0)
        answer: Answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", body
        return answer["data"]  # type: ignore[no-any-return]

    def query(self, promql: str, **params: str) -> list[Answer]:
        return self.api("query", query=promql, **params)["result"]  # type: ignore[no-any-return]

    def samples(self, selector: str = '{__name__=~".+"}', at: float | None = None) -> Samples:
        """Every raw sample of the series ``selector`` picks, up to ``at`` (default now)."""
        params = {} if at is None else {"time": f"{at:.3f}"}
        found: Samples = {}
        for series in self.query(f"{selector}[{EVERYTHING}]", **params):
            found[frozenset(series["metric"].items())] = [
                (float(stamp), float(value)) for stamp, value in series["values"]]
        return found

    def wait_until(self, what: str, found: Callable[[], T | None], timeout: float = 60.0,
                   logs: Callable[[], str] = str) -> T:
        return wait_until(f"{what} in Prometheus", found, timeout, every=0.5, detail=logs)


def create_blocks(openmetrics: Path, tsdb: Path) -> str:
    """promtool's blocks from an OpenMetrics file into ``tsdb``; its output, or the test
    fails with it."""
    result = subprocess.run(
        [require_tool("promtool"), "tsdb", "create-blocks-from", "openmetrics",
         f"--max-block-duration={PROMTOOL_BLOCK_DURATION}", str(openmetrics), str(tsdb)],
        capture_output=True, text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool refused {openmetrics}:\n{output}"
    return output


@contextmanager
def binary_on_port(name: str, argv: Callable[[int], list[str]], ready: str, workdir: Path,
                   port: int | None = None) -> Iterator[str]:
    """The tool `name` started in `workdir` with `argv(port)`, listening on 127.0.0.1:`port`
    (a free one unless given), its output in `workdir`/NAME.log; yields its URL once
    `ready` (a path) answers 200; ended by its PID."""
    port = port or free_port()
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([require_tool(name), *argv(port)], stdout=out,
                                stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{log.read_text()}")
        return http_get(url + ready, timeout=1.0)[0] == 200

    try:
        wait_until(f"{name} ready", answers, 60.0, every=0.1, detail=log.read_text,
                   ignoring=(OSError,))
        yield url
    finally:
        end_process(proc)


@contextmanager
def prometheus_server(workdir: Path, tsdb: Path, config: str = "global: {}\n",
                      *flags: str, port: int | None = None) -> Iterator[PrometheusServer]:
    """Debian's Prometheus on ``tsdb`` with ``config``, ready; ended by PID. ``port``: a
    Prometheus started again where the one before it listened."""
    config_file = workdir / "prometheus.yml"
    config_file.write_text(config)
    with binary_on_port("prometheus", lambda port: [
            f"--config.file={config_file}", f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address=127.0.0.1:{port}", *flags],
            "/-/ready", workdir, port) as url:
        yield PrometheusServer(url)


@contextmanager
def prometheus_on_blocks(openmetrics: Path, workdir: Path) -> Iterator[PrometheusServer]:
    """promtool's blocks of ``openmetrics``, served by a Prometheus that keeps them."""
    tsdb = workdir / "tsdb"
    create_blocks(openmetrics, tsdb)
    with prometheus_server(workdir, tsdb, "global: {}\n",
                           f"--storage.tsdb.retention.time={RETENTION}") as server:
        yield server


@contextmanager
def prometheus_receiver(workdir: Path, window: str | None = "30d", enabled: bool = True,
                        *, scrape: tuple[str, str] | None = None, port: int | None = None
                        ) -> Iterator[PrometheusServer]:
    """A Prometheus taking remote write when `enabled`, with `storage: tsdb:
    out_of_order_time_window: WINDOW` unless `window` is None; `scrape`: (job, target)
    it also scrapes every 2 s, as it scrapes the live exporter."""
    config = "global: {}\n"
    if scrape is not None:
        config = ("global:\n  scrape_interval: 2s\nscrape_configs:\n"
                  f"  - job_name: {scrape[0]}\n    static_configs:\n"
                  f"      - targets: ['{scrape[1]}']\n")
    config += (f"storage:\n  tsdb:\n    out_of_order_time_window: {window}\n"
               if window else "")
    flags = ["--web.enable-remote-write-receiver"] if enabled else []
    with prometheus_server(workdir, workdir / "tsdb", config,
                           f"--storage.tsdb.retention.time={RETENTION}", *flags,
                           port=port) as server:
        yield server


class VictoriaMetrics(Database):
    def import_prometheus(self, exposition: bytes, **params: str) -> None:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(f"{self.url}/api/v1/import/prometheus{query}",
                                         data=exposition, method="POST")
        with urllib.request.urlopen(request, timeout=120) as answer:
            assert answer.status == 204, answer.read()

    def flush(self) -> None:
        status, body = http_get(f"{self.url}/internal/force_flush", timeout=30.0)
        assert status == 200, body

    def export(self, match: str = '{__name__=~".+"}') -> Samples:
        """Every raw sample of the series ``match`` picks (flushed first)."""
        self.flush()
        status, body = http_get(
            f"{self.url}/api/v1/export?{urllib.parse.urlencode({'match[]': match})}",
            timeout=120.0)
        assert status == 200, body
        found: Samples = {}
        for line in body.splitlines():
            series = json.loads(line)
            pairs = sorted(zip(series["timestamps"], series["values"], strict=True))
            found[frozenset(series["metric"].items())] = [
                (stamp / 1000, float(value)) for stamp, value in pairs]
        return found


@contextmanager
def victoria_metrics(workdir: Path) -> Iterator[VictoriaMetrics]:
    """Debian's victoria-metrics on its own data directory, ready; ended by PID."""
    with binary_on_port("victoria-metrics", lambda port: [
            f"-storageDataPath={workdir / 'vmdata'}", f"-httpListenAddr=127.0.0.1:{port}",
            f"-retentionPeriod={RETENTION}"], "/health", workdir) as url:
        yield VictoriaMetrics(url)


def end_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
