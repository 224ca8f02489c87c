"""The benchmark's short mode runs end to end and prints every figure (no thresholds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.harness import REPO


def test_quick_benchmark_prints_its_figures(tmp_path: Path) -> None:
    report = tmp_path / "benchmark.md"

    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "benchmark.py"), "--quick", "--output", str(report)],
        capture_output=True, text=True, timeout=180, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    for figure in ("keep-alive", "Connection: close", "memory:", "data calls answered after 5 s",
                   "Netatmo down", "cold start", "demo   account", "large  account",
                   "bare prometheus_client   RSS", "MB after start", "ms CPU per scrape",
                   "tail plain", "tail gc-freeze"):
        assert figure in result.stdout
    text = report.read_text()
    assert "## Machine" in text and "CPU:" in text and "| keep-alive |" in text
    assert "| PyPI | service |" in text and "- PyPI: the service holds" in text
    assert "| gc-freeze |" in text


def test_history_benchmark_prints_its_figures(tmp_path: Path) -> None:
    report = tmp_path / "history.md"

    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "history.py"), "--days", "2", "--speedup", "600",
         "--output", str(report)], capture_output=True, text=True, timeout=180, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    for figure in ("| wall time |", "| calls | 12 (10 getmeasure; the fewest 1,024 readings "
                   "per call allow: 10) |", "| backfill peak RSS |", "| code 26 refusals | 0 |"):
        assert figure in result.stdout
    assert report.read_text() == result.stdout.rstrip("\n") + "\n"


def test_history_follower_benchmark_prints_its_figures(tmp_path: Path) -> None:
    report = tmp_path / "follower.md"

    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "history_follower.py"), "--hours", "2",
         "--output", str(report)], capture_output=True, text=True, timeout=180, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    for figure in ("| steady state: getmeasure calls per hour | 20.", "| catch-up after 24 h "
                   "off: calls | 11 |", "| steady state: bytes sent per day (snappy) |",
                   "(100.0 %), each at its own time |", "at the scrape's time |"):
        assert figure in result.stdout
    assert report.read_text() == result.stdout.rstrip("\n") + "\n"


def test_token_stress_benchmark_prints_its_figures() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "token_stress.py"), "--seconds", "20",
         "--cycle", "10"], capture_output=True, text=True, timeout=240, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    for figure in ("invalid_grant answers:          0", "refresh tokens lost:            0",
                   "slowest", "backfill runs:", "file renewer:"):
        assert figure in result.stdout
