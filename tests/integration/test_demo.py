"""`netatmo-exporter demo` as the README starts it: metrics at once, and its deliberate
faults named as simulated."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from netatmo_exporter.entrypoints.demo import SIMULATED_FAULTS
from tests.support.harness import REPO, free_port, http_get, metric_value


def test_the_demo_serves_metrics_and_names_its_simulated_faults(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with open(log, "wb") as output:
        demo = subprocess.Popen([sys.executable, "-m", "netatmo_exporter", "demo", "-a",
                                 f"127.0.0.1:{port}"], stdout=output,
                                stderr=subprocess.STDOUT, cwd=REPO,
                                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 30.0
        body = ""
        while metric_value(body, "netatmo_up") != 1.0:
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
            try:
                body = http_get(f"http://127.0.0.1:{port}/metrics")[1]
            except OSError:
                body = ""
        status, page = http_get(f"http://127.0.0.1:{port}/")
    finally:
        demo.terminate()
        assert demo.wait(15) == 0

    printed = log.read_text()
    assert "simulated on purpose" in printed
    assert status == 200
    for fault in SIMULATED_FAULTS:
        assert f"    - {fault}\n" in printed
        for name in re.findall(r'"([^"]+)"', fault):
            assert name in page, name


def test_the_demo_prints_a_backfill_of_its_history_that_works(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    with open(log, "wb") as output:
        demo = subprocess.Popen([sys.executable, "-m", "netatmo_exporter", "demo", "-a",
                                 f"127.0.0.1:{port}"], stdout=output,
                                stderr=subprocess.STDOUT, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 30.0
        while "  history      " not in log.read_text():
            assert demo.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        line = re.search(r"  history      netatmo-exporter (backfill .*)\n", log.read_text())
        assert line is not None
        command = [sys.executable, "-m", "netatmo_exporter",
                   *shlex.split(line[1])]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                check=False, cwd=tmp_path, env=env)
    finally:
        demo.terminate()
        assert demo.wait(15) == 0

    assert result.returncode == 0, result.stderr
    assert "through the running exporter" in result.stderr
    history = (tmp_path / "demo-history.om").read_text()
    assert history.endswith("# EOF\n")
    assert "netatmo_room_setpoint_temperature_celsius{" in history
    assert history.count("netatmo_sensor_temperature_celsius{") > 1000
