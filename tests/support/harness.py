"""Shared test harness: the simulated cloud, token files and a real exporter process.

Every process a test starts is ended by its PID; every socket is on 127.0.0.1 with an
ephemeral port (never 9210, which the Debian system test uses).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from netatmo_exporter.adapters.system.token_file import FileTokenStore
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.simulator import FakeNetatmoCloud

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret-5d41402abc4b2a76"
REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 20.0, *,
               every: float = 0.05, detail: Callable[[], str] = str,
               ignoring: tuple[type[Exception], ...] = ()) -> T:
    """Calls `probe` every `every` s until it returns something true, and returns that; after
    `timeout` s fails naming `what`, with `detail()` (logs, last answer). An exception in
    `ignoring` counts as "not yet"; any other ends the wait (a probe raises to say "never")."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = probe()
            if found:
                return found
        except ignoring:
            pass
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} within {timeout}s\n{detail()}")
        time.sleep(every)


def in_background(call: Callable[[], object], catching: type[BaseException] = Exception
                  ) -> tuple[threading.Thread, list[object]]:
    """Starts `call` in a daemon thread; the list receives what it returned or the
    `catching` exception it raised (anything else ends the thread with a traceback)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except catching as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def self_signed_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A key and a certificate for `name` and 127.0.0.1, valid for a day (openssl)."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-days", "1", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed_token(cloud: FakeNetatmoCloud, path: Path, *, refresh_only: bool = False,
               scope: Sequence[str] = ("read_station", "read_homecoach"),
               now: float | None = None) -> dict[str, object]:
    """Write a token file as an authorized exporter would; returns the grant. `now` is the
    exporter's time (default: the wall clock)."""
    grant = cloud.issue_tokens(scope)
    if refresh_only:
        token = Token(refresh_token=str(grant["refresh_token"]))
    else:
        token = Token.from_grant(str(grant["access_token"]), str(grant["refresh_token"]),
                                 float(grant["expires_in"]),
                                 time.time() if now is None else now, tuple(scope))
    FileTokenStore(path).save(token)
    return grant


def exporter_args(cloud: FakeNetatmoCloud, token_path: Path, *extra: str) -> list[str]:
    return ["--api-url", cloud.base_url, "--token-file", str(token_path),
            "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, *extra]


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None
             ) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def metric_value(exposition: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a text exposition, or None."""
    for line in exposition.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        sample_name, _, label_text = head.partition("{")
        if sample_name != name:
            continue
        if all(f'{key}="{val}"' in label_text for key, val in labels.items()):
            return float(value)
    return None


@dataclass
class ExporterProcess:
    """`python -m netatmo_exporter` in a subprocess, logs captured to a file."""

    args: list[str]
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"exporter-{self.port}.log"

    def start(self, wait_ready: bool = False, timeout: float = 20.0) -> ExporterProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "netatmo_exporter", "--addr", f"127.0.0.1:{self.port}",
                 *self.args],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        self.wait_for("/-/ready" if wait_ready else "/-/healthy", timeout)
        return self

    def wait_for(self, path: str, timeout: float = 20.0) -> None:
        wait_until(f"200 on {path}", lambda: self._running() and http_get(
            self.url + path, timeout=1.0)[0] == 200, timeout, detail=self.logs,
            ignoring=(OSError,))

    def metrics_when(self, accept: Callable[[str], object], what: str,
                     timeout: float = 20.0) -> str:
        """/metrics once `accept` takes its body (the exporter still running)."""
        def body() -> str | None:
            status, text = self.get("/metrics") if self._running() else (0, "")
            return text if status == 200 and accept(text) else None
        return wait_until(what, body, timeout, every=0.1, detail=self.logs)

    def _running(self) -> bool:
        """True while the process runs; an AssertionError with its logs once it ended."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"exporter exited with {self.proc.returncode}:\n{self.logs()}")
        return True

    def get(self, path: str, **kwargs: object) -> tuple[int, str]:
        return http_get(self.url + path, **kwargs)  # type: ignore[arg-type]

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 15.0) -> int:
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int:
        return self._end(signal.SIGKILL, 10.0)

    def _end(self, signum: int, timeout: float) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            raise AssertionError(f"exporter ignored signal {signum}:\n{self.logs()}") from None


def authorized_process(cloud: FakeNetatmoCloud, token_path: Path, workdir: Path,
                       *extra: str) -> ExporterProcess:
    """An exporter process (not started yet) with a token file as an authorized exporter
    leaves it, the shipped limits, data fetched once an hour; `extra`: more flags."""
    seed_token(cloud, token_path)
    return ExporterProcess(exporter_args(cloud, token_path, "--refresh-interval", "1h", *extra),
                           workdir)
