"""Backfilled history and live scrapes as one series on Prometheus's own graph page, with a
screenshot (Grafana is not packaged in Debian, so the shipped dashboard cannot be shown
here; Prometheus's graph page of the same query stands in for it).

The scene: the simulated cloud and a running exporter; `netatmo-exporter backfill` writes
the garden temperature's stored history up to 3 hours ago (Prometheus' head block), promtool
turns it into blocks in a fresh TSDB, and a Prometheus on that TSDB scrapes the exporter for
NETATMO_HISTORY_LIVE_SECONDS (default 15 s; the documentation's picture took 30 minutes).
The 3 hours between the two stay empty here, as Prometheus was not scraping then; in a real
installation the exporter has been scraped all along and the line is unbroken."""

from __future__ import annotations

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
from tests.support.tsdb import RETENTION, create_blocks, prometheus_server

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
        settings = exporter_args(cloud, token, "--control-socket", str(tmp_path / "ctl.sock"),
                                 "--refresh-interval", "30s")
        exporter = ExporterProcess(settings, tmp_path)
        exporters.append(exporter)
        exporter.start(wait_ready=True)
        history = tmp_path / "history.om"
        result = subprocess.run(
            [sys.executable, "-m", "netatmo_exporter", "backfill", *settings, "--from", "9h",
             "--output", str(history), "--label", "job=netatmo",
             "--label", f"instance=127.0.0.1:{exporter.port}"],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        assert result.returncode == 0, result.stderr
        create_blocks(history, tmp_path / "tsdb")
        config = ("global: {scrape_interval: 2s}\nscrape_configs:\n  - job_name: netatmo\n"
                  f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n")
        with prometheus_server(tmp_path, tmp_path / "tsdb", config,
                               f"--storage.tsdb.retention.time={RETENTION}") as prometheus:
            started = time.time()
            time.sleep(float(os.environ.get("NETATMO_HISTORY_LIVE_SECONDS") or 15))
            yield prometheus.url, started


def test_backfilled_history_and_live_scrapes_are_one_series(scene: tuple[str, float]) -> None:
    url, started = scene
    query = urllib.parse.urlencode({"query": f"{QUERY}[{GRAPH_RANGE}]"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=30) as answer:
        (series,) = json.load(answer)["data"]["result"]
    stamps = [float(stamp) for stamp, _ in series["values"]]
    backfilled = [t for t in stamps if t < started - 3 * 3600 + 600]
    live = [t for t in stamps if t >= started]
    assert len(backfilled) > 50 and len(live) >= 2
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
