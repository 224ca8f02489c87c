"""Backfilled history, the history follower's readings and live scrapes as one series on
Prometheus's own graph page, with a screenshot (Grafana is not packaged in Debian, so the
shipped dashboard cannot be shown here; Prometheus's graph page of the same query stands in
for it).

The scene: the simulated cloud; `netatmo-exporter backfill` writes the garden temperature's
stored history from 9 hours ago up to 3 hours ago (Prometheus' head block), promtool turns
it into blocks in a fresh TSDB; a Prometheus on that TSDB (remote-write receiver on, a
1-day out-of-order window) scrapes an exporter whose history follower writes the last 3
hours, the hours promtool's blocks may not reach, for NETATMO_HISTORY_LIVE_SECONDS (default
15 s; the documentation's picture took 30 minutes). The line runs unbroken from the backfill
through the follower's readings into the live scrapes."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud, demo_account
from tests.browser.webdriver import ChromeDriver
from tests.conftest import exporter_args
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, REPO, ExporterProcess, seed_token
from tests.support.tsdb import create_blocks, prometheus_receiver

QUERY = 'netatmo_sensor_temperature_celsius{module=~"Jardin.*"}'
GRAPH_RANGE = "8h"
SCOPES = ("read_station", "read_homecoach")


@pytest.fixture
def scene(tmp_path: Path, exporters: list[ExporterProcess]) -> Iterator[tuple[str, float]]:
    """A Prometheus holding the backfilled history and the live scrapes; its URL and the
    moment it started scraping."""
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=demo_account()) as cloud:
        token = tmp_path / "token.json"
        seed_token(cloud, token, scope=SCOPES)
        settings = exporter_args(cloud, token, "--refresh-interval", "30s")
        exporter = ExporterProcess(settings, tmp_path)
        labels = ("job=netatmo", f"instance=127.0.0.1:{exporter.port}")
        history = tmp_path / "history.om"
        result = subprocess.run(
            [sys.executable, "-m", "netatmo_exporter", "backfill", *settings, "--from", "9h",
             "--output", str(history), *(f"--label={label}" for label in labels)],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        assert result.returncode == 0, result.stderr
        create_blocks(history, tmp_path / "tsdb")
        with prometheus_receiver(tmp_path, "1d",
                                 scrape=("netatmo", f"127.0.0.1:{exporter.port}")) as prometheus:
            exporter.args += ["--history.remote-write-url", prometheus.write_url,
                              *(f"--history.label={label}" for label in labels)]
            exporters.append(exporter)
            exporter.start(wait_ready=True)
            started = time.time()
            # The point: live scrapes for a while beside the history (real time, as the
            # graph shows it).
            time.sleep(float(os.environ.get("NETATMO_HISTORY_LIVE_SECONDS") or 15))
            yield prometheus.url, started


def test_backfilled_history_and_live_scrapes_are_one_series(scene: tuple[str, float]) -> None:
    url, started = scene
    query = urllib.parse.urlencode({"query": f"{QUERY}[{GRAPH_RANGE}]"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=30) as answer:
        (series,) = json.load(answer)["data"]["result"]
    stamps = [float(stamp) for stamp, _ in series["values"]]
    backfilled = [t for t in stamps if t < started - 3 * 3600 - 600]
    followed = [t for t in stamps if started - 3 * 3600 + 600 <= t < started - 600]
    live = [t for t in stamps if t >= started]
    assert len(backfilled) > 50 and len(followed) >= 30 and len(live) >= 2
    # No hole longer than a missed reading or two (readings come about every 5 minutes).
    assert max(b - a for a, b in itertools.pairwise(stamps)) < 900
    assert series["metric"]["job"] == "netatmo"


def test_the_graph_page_shows_them_as_one_line(
        scene: tuple[str, float], chromedriver: ChromeDriver, tmp_path: Path,
        screenshots: Path) -> None:
    url, _ = scene
    with urllib.request.urlopen(f"{url}/graph", timeout=30) as answer:
        page = answer.read().decode(errors="replace")
    if "does not include the modern React web UI" in page and "rickshaw" not in page.lower():
        # Debian trixie's prometheus (2.53) is packaged without any web UI: there is no
        # graph page to look at; the series itself is checked by the test above.
        pytest.skip("this Debian prometheus package ships no graph page")
    browser = chromedriver.session(tmp_path / "profile", width=1200, height=1000)
    try:
        params = urllib.parse.urlencode({"g0.expr": QUERY, "g0.tab": "0",
                                         "g0.range_input": GRAPH_RANGE, "g0.stacked": "0",
                                         "g0.show_exemplars": "0"})
        browser.open(f"{url}/graph?{params}")
        # Debian's Prometheus 2.42 serves the classic (Rickshaw) graph page.
        browser.wait_for(lambda: browser.exists(".rickshaw_legend .label"), "the graph")
        legend = browser.find(".rickshaw_legend").text
        shot = browser.screenshot(screenshots / "history-prometheus-graph.png")
    finally:
        browser.quit()
    assert legend.count("netatmo_sensor_temperature_celsius") == 1
    assert shot.stat().st_size > 10_000
