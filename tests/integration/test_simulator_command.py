"""`netatmo-exporter simulator`: the simulated cloud for an installed exporter. Its --help
shows every default, and an exporter given the settings it prints is authorized through
its consent page and serves the simulated account."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.support.harness import REPO, ExporterProcess, free_port, metric_value

COMMAND = [sys.executable, "-m", "netatmo_exporter", "simulator"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def test_help_shows_every_default() -> None:
    result = subprocess.run([*COMMAND, "--help"], capture_output=True, text=True, timeout=60,
                            check=True, env=ENV)
    text = " ".join(result.stdout.split())
    for default in ("--listen HOST:PORT", "(default: 127.0.0.1:9220)",
                    "(default: simulator-client)", "(default: simulator-secret)",
                    "(default: demo)", "(default: 60.0)"):
        assert default in text, default


def _settings(simulator: subprocess.Popen[bytes], timeout: float = 20.0) -> dict[str, str]:
    assert simulator.stdout is not None
    printed = b""
    deadline = time.monotonic() + timeout
    while b"NETATMO_CLIENT_SECRET=" not in printed:
        assert simulator.poll() is None and time.monotonic() < deadline, printed
        ready, _, _ = select.select([simulator.stdout], [], [], 1.0)
        if ready:
            printed += os.read(simulator.stdout.fileno(), 65536)
    return dict(re.findall(r"^(NETATMO_\w+)=(\S+)$", printed.decode(), re.MULTILINE))


def test_an_exporter_given_the_printed_settings_is_authorized_and_serves(
        tmp_path: Path) -> None:
    port = free_port()
    simulator = subprocess.Popen([*COMMAND, "--listen", f"127.0.0.1:{port}"],
                                 stdout=subprocess.PIPE, env=ENV)
    exporter = None
    try:
        settings = _settings(simulator)
        assert settings == {"NETATMO_API_URL": f"http://127.0.0.1:{port}",
                            "NETATMO_CLIENT_ID": "simulator-client",
                            "NETATMO_CLIENT_SECRET": "simulator-secret"}
        exporter = ExporterProcess(["--token-file", str(tmp_path / "token.json")], tmp_path,
                                   env=settings).start()
        with httpx.Client(base_url=exporter.url, timeout=10.0) as browser:
            authorize = browser.get("/auth/authorize").headers["location"]
            assert authorize.startswith(f"http://127.0.0.1:{port}/oauth2/authorize?")
            page = httpx.get(authorize, timeout=10.0).text
            assert "read the data of your Weather Stations (read_station)" in page
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                     page))
            accepted = httpx.post(f"http://127.0.0.1:{port}/oauth2/authorize/decision",
                                  data={**fields, "decision": "accept"}, timeout=10.0)
            callback = urlsplit(accepted.headers["location"])
            assert browser.get(f"{callback.path}?{callback.query}").status_code == 303
        body = exporter.metrics_when(lambda text: metric_value(text, "netatmo_up") == 1.0,
                                     "netatmo_up 1", 20.0)
        assert "netatmo_sensor_temperature_celsius{" in body
    finally:
        if exporter is not None:
            assert exporter.terminate() == 0
        simulator.terminate()
        assert simulator.wait(15) == 0
        assert simulator.stdout is not None
        simulator.stdout.close()
