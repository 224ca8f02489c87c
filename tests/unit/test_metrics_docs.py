"""docs/metrics.md and the Grafana dashboard agree with the collector's metric catalog."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from netatmo_exporter.adapters.metrics.docs import METRICS, markdown_table
from netatmo_exporter.adapters.metrics.energy_metrics import SHARED_MODULE_METRICS

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "metrics.md"
DASHBOARD = REPO / "monitoring" / "grafana" / "netatmo-dashboard.json"
BEGIN, END = "<!-- metrics table: generated, do not edit -->\n", "<!-- end of metrics table -->"


def test_docs_table_is_the_generated_one() -> None:
    text = DOC.read_text()
    documented = text[text.index(BEGIN) + len(BEGIN):text.index(END)]

    assert documented == markdown_table(), (
        "docs/metrics.md drifted: regenerate the table with "
        "`python -m netatmo_exporter.adapters.metrics.docs --markdown`")


def test_markdown_command_prints_the_table() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "netatmo_exporter.adapters.metrics.docs", "--markdown"],
        capture_output=True, text=True, timeout=60, check=True, cwd=REPO)

    assert result.stdout == markdown_table()


def test_catalog_names_follow_prometheus_conventions() -> None:
    names = [spec.name for spec in METRICS]
    new = [spec for spec in METRICS if not spec.go]

    # A family shared by weather and heating modules is listed once per label set.
    assert len(names) == len({(spec.name, spec.labels) for spec in METRICS})
    shared = {name for name in names if names.count(name) > 1}
    assert shared == {spec.name for spec in SHARED_MODULE_METRICS.values()}
    assert all(len({spec.kind for spec in METRICS if spec.name == name}) == 1 for name in shared)
    assert all(re.fullmatch(r"netatmo_[a-z0-9_]+", name) for name in names)
    assert all(spec.name.endswith("_total") for spec in METRICS if spec.kind == "counter")
    assert all(spec.name.endswith("_info") for spec in METRICS if spec.kind == "info")
    assert all(not re.search(r"_(mb|kph|mm|percent|time|volt|ms)$", spec.name) for spec in new)
    assert all(spec.name.endswith("_timestamp_seconds") for spec in new
               if spec.unit == "Unix seconds")
    assert all(spec.text[:1].isupper() or spec.text[:1].isdigit() for spec in METRICS)


def test_help_texts_say_what_operators_get_wrong() -> None:
    text = {spec.name: spec.text for spec in METRICS}

    assert "lower is better" in text["netatmo_sensor_wifi_signal_strength"]
    assert "lower is better" in text["netatmo_module_rf_signal_strength"]
    assert "sea level" in text["netatmo_sensor_pressure_mb"]
    assert "not reduced to sea level" in text["netatmo_sensor_absolute_pressure_pascals"]
    assert "last measurement only" in text["netatmo_sensor_rain_amount_mm"]
    assert "summed over the last hour" in text["netatmo_sensor_rain_last_hour_meters"]
    assert "Cached; refreshed from Netatmo after each upload" in text[
        "netatmo_module_data_age_seconds"]


def test_dashboard_is_importable_and_uses_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    panels = dashboard["panels"]
    datasources = {json.dumps(panel["datasource"], sort_keys=True)
                   for panel in panels if "datasource" in panel}
    datasources |= {json.dumps(target["datasource"], sort_keys=True)
                    for panel in panels for target in panel.get("targets", [])}

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"instance", "home", "station", "module"} <= variables.keys()
    assert datasources == {'{"type": "prometheus", "uid": "${datasource}"}'}
    assert len({panel["id"] for panel in panels}) == len(panels)
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    assert all(panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24 for panel in panels)


def test_dashboard_queries_only_catalogued_metrics() -> None:
    text = DASHBOARD.read_text()
    catalogued = {spec.name for spec in METRICS}

    queried = set(re.findall(r"\bnetatmo_[a-z0-9_]+", text)) - {"netatmo_exporter"}

    assert queried - catalogued == set()
    assert {"netatmo_sensor_health_index", "netatmo_sensor_rain_today_meters",
            "netatmo_module_battery_ratio", "netatmo_exporter_token_expiry_time",
            "netatmo_room_temperature_celsius", "netatmo_module_battery_state"} <= queried
