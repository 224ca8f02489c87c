"""`netatmo-exporter demo` as the README starts it: metrics at once, and its deliberate
faults named as simulated."""

from __future__ import annotations

import re
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
