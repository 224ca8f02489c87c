"""`netatmo-exporter demo` as the README starts it: metrics at once, and its deliberate
faults named as simulated."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from netatmo_exporter.entrypoints.demo import SIMULATED_FAULTS
from tests.support.harness import REPO, free_port, http_get, metric_value, wait_until


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

        def up() -> bool:
            assert demo.poll() is None, log.read_text()
            body = http_get(f"http://127.0.0.1:{port}/metrics")[1]
            return metric_value(body, "netatmo_up") == 1.0
        wait_until("netatmo_up 1 from the demo", up, 30.0, every=0.2, detail=log.read_text,
                   ignoring=(OSError,))
        status, page = http_get(f"http://127.0.0.1:{port}/")
        history = _history_in_prometheus(log, port, deadline)
    finally:
        demo.terminate()
        assert demo.wait(15) == 0

    printed = log.read_text()
    assert "simulated on purpose" in printed
    # Debian's prometheus is installed here: the demo's own scrapes it and takes its history
    # (3 hours of readings every 5 minutes, 36 a module, beside its scrapes).
    assert history >= 36, printed
    assert status == 200
    for fault in SIMULATED_FAULTS:
        assert f"    - {fault}\n" in printed
        for name in re.findall(r'"([^"]+)"', fault):
            assert name in page, name


def _history_in_prometheus(log: Path, port: int, deadline: float) -> float:
    """The most samples a garden temperature series has in the demo's Prometheus over 4
    hours, once the history follower wrote."""
    found = re.search(r"prometheus +(http://127\.0\.0\.1:\d+)/graph", log.read_text())
    assert found, log.read_text()
    query = "max(count_over_time(netatmo_sensor_temperature_celsius[4h]))"
    def samples() -> float | None:
        written = metric_value(http_get(f"http://127.0.0.1:{port}/metrics")[1],
                               "netatmo_exporter_history_samples_written_total") or 0
        if written > 0:
            body = http_get(f"{found.group(1)}/api/v1/query?query="
                            f"{urllib.parse.quote(query)}")[1]
            result = json.loads(body)["data"]["result"]
            if result:
                return float(result[0]["value"][1])
        return None
    return wait_until("history in the demo's Prometheus", samples,
                      deadline + 30.0 - time.monotonic(), every=0.5, detail=log.read_text)


def _fresh_clone(tmp_path: Path) -> Path:
    """The repository as `git clone` gives it: its files (tracked, and new ones not ignored,
    as scripts/build-deb packs them), committed, nothing else."""
    clone = tmp_path / "netatmo-exporter"
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard", "--deduplicate"], capture_output=True,
                           check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).exists():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name, follow_symlinks=False)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "clone"]):
        subprocess.run(git + args, check=True, capture_output=True, timeout=60)
    return clone


def test_from_a_fresh_clone_the_demos_commands_run_as_printed_and_leave_it_clean(
        tmp_path: Path) -> None:
    clone = _fresh_clone(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    # Short: the demo's control socket goes below it (a unix socket path has 107 bytes).
    scratch = Path(tempfile.mkdtemp(prefix="demo-", dir="/tmp"))
    try:
        _demo_commands(clone, home, scratch, tmp_path / "demo.log")
    finally:
        shutil.rmtree(scratch)


def _demo_commands(clone: Path, home: Path, scratch: Path, log: Path) -> None:
    # A second terminal in the user's home: the printed commands must not need the clone's
    # directory, a venv or an installed package.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(scratch)}
    port = free_port()
    with open(log, "wb") as output:
        demo = subprocess.Popen([str(clone / "scripts" / "demo"), "-a", f"127.0.0.1:{port}"],
                                stdout=output, stderr=subprocess.STDOUT, cwd=home, env=env)
    try:
        def printed() -> bool:
            assert demo.poll() is None, log.read_text()
            return "  history      " in log.read_text()
        wait_until("history command printed", printed, 30.0, every=0.2, detail=log.read_text)
        line = re.search(r"  history      (.*)\n", log.read_text())
        assert line is not None
        backfill = subprocess.run(line[1], shell=True, capture_output=True, text=True,  # noqa: S602
                                  timeout=120, check=False, cwd=home, env=env)
        assert backfill.returncode == 0, backfill.stderr
        following = re.search(r"^next: (.*)$", backfill.stderr, re.MULTILINE)
        assert following is not None, backfill.stderr
        promtool = subprocess.run(following[1], shell=True, capture_output=True, text=True,  # noqa: S602
                                  timeout=120, check=False, cwd=home, env=env)
    finally:
        demo.terminate()
        assert demo.wait(15) == 0

    assert "through the running exporter" in backfill.stderr
    output = Path(shlex.split(line[1])[-1])
    assert output.is_relative_to(scratch)
    history = output.read_text()
    assert history.endswith("# EOF\n")
    assert "netatmo_room_setpoint_temperature_celsius{" in history
    assert history.count("netatmo_sensor_temperature_celsius{") > 1000
    assert promtool.returncode == 0, promtool.stderr
    assert f"the backfill's files stay in {output.parent}" in log.read_text()
    status = subprocess.run(["git", "-C", str(clone), "status", "--porcelain", "--ignored"],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    assert [entry for entry in status.splitlines() if "__pycache__" not in entry] == []
    assert list(home.iterdir()) == []
