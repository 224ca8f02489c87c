"""A real Prometheus server (Debian's `prometheus`, on 127.0.0.1 with a temporary TSDB)
scrapes the exporter every second, loads our alerting rules, and answers PromQL with the
simulated account's values; every dashboard query runs without error."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.integration.test_promtool import (
    DASHBOARD,
    RULE_COUNT,
    RULES,
    demo_exporter,
)
from tests.support.harness import REPO
from tests.support.tsdb import PrometheusServer, prometheus_server

Answer = dict[str, Any]
PASSWORD = "scrape-password-for-tests"
EMPTY_WHEN_HEALTHY = 'netatmo_exporter_scope_missing{instance=~".*"} == 1'


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    workdir = tmp_path_factory.mktemp("prometheus")
    guarded_dir = tmp_path_factory.mktemp("guarded")
    web_config = guarded_dir / "web.yml"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web_config.write_text(f"basic_auth_users:\n  prometheus: {hashed}\n")
    password_file = workdir / "password"
    password_file.write_text(PASSWORD)
    with demo_exporter(workdir) as exporter, \
            demo_exporter(guarded_dir, "--web.config.file", str(web_config),
                          wait_ready=False) as guarded:  # /-/ready asks for a password
        # The guarded exporter is scraped for netatmo_up only (prometheus_client's name
        # filter), so the rules and the dashboard see one account.
        guarded_job = ("    params: {'name[]': [netatmo_up]}\n"
                       f"    static_configs: [{{targets: ['127.0.0.1:{guarded.port}']}}]\n")
        config_text = (
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{json.dumps(str(RULES))}]\n"
            "scrape_configs:\n"
            "  - job_name: netatmo\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n"
            "  - job_name: netatmo_basic_auth\n"
            "    basic_auth: {username: prometheus, "
            f"password_file: {json.dumps(str(password_file))}}}\n" + guarded_job +
            "  - job_name: netatmo_no_credentials\n" + guarded_job)
        with prometheus_server(workdir, workdir / "tsdb", config_text) as server:
            yield server


def test_promql_answers_the_simulated_account_values(prometheus: PrometheusServer) -> None:
    result = prometheus.wait_until("Salon temperature", lambda: prometheus.query(
        'netatmo_sensor_temperature_celsius{job="netatmo",module="Salon"}'))

    assert [float(series["value"][1]) for series in result] == [21.5]
    assert result[0]["metric"]["station"] == "Maison (Lyon)"
    health = prometheus.query('netatmo_sensor_health_index{station="Chambre"}')
    assert [float(series["value"][1]) for series in health] == [1.0]
    favorites = prometheus.query('netatmo_module_info{favorite="true"}')
    assert sorted(s["metric"]["module"] for s in favorites) == ["Extérieur", "Intérieur"]
    rooms = prometheus.query('netatmo_room_temperature_celsius{home="Maison"}')
    assert {s["metric"]["room"]: float(s["value"][1]) for s in rooms} == {
        "Salon": 20.5, "Chambre": 18.0, "Salle de bain": 21.5}
    boiler = prometheus.query('netatmo_module_boiler_on == 1')
    assert [s["metric"]["module"] for s in boiler] == ["Thermostat"]


def test_basic_auth_scrape_with_credentials_and_refusal_without(
        prometheus: PrometheusServer) -> None:
    def scraped() -> dict[str, float]:
        ups = {series["metric"]["job"]: float(series["value"][1])
               for series in prometheus.query('up{job=~"netatmo_.*"}')}
        return ups if len(ups) == 2 else {}

    ups = prometheus.wait_until("both basic-auth jobs scraped", scraped)
    assert ups == {"netatmo_basic_auth": 1.0, "netatmo_no_credentials": 0.0}
    names = prometheus.query('count by (__name__) ({job="netatmo_basic_auth", '
                             '__name__=~"netatmo_.*"})')
    assert [series["metric"]["__name__"] for series in names] == ["netatmo_up"]
    targets = prometheus.api("targets")["activeTargets"]
    denied = [t for t in targets if t["labels"]["job"] == "netatmo_no_credentials"]
    assert "401" in denied[0]["lastError"]


def documented_basic_auth_job() -> str:
    """docs/metrics.md's scrape job for an exporter with a password, as the reader copies it."""
    doc = (REPO / "docs" / "metrics.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.DOTALL)
    (job,) = [block for block in blocks if "basic_auth:" in block]
    return job


def test_the_documented_basic_auth_scrape_over_plain_http_works(tmp_path: Path) -> None:
    job = documented_basic_auth_job()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web_config = tmp_path / "web.yml"
    web_config.write_text(f"basic_auth_users:\n  prometheus: {hashed}\n")
    password_file = tmp_path / "netatmo-password"
    password_file.write_text(PASSWORD + "\n")  # as an editor saves it
    with demo_exporter(tmp_path, "--web.config.file", str(web_config),
                       wait_ready=False) as guarded:
        # Only what the reader fills in differs: the exporter's address, the file's place.
        config = ("global: {scrape_interval: 1s}\nscrape_configs:\n" + job
                  .replace("weatherbox:9210", f"127.0.0.1:{guarded.port}")
                  .replace("/etc/prometheus/netatmo-password", str(password_file)))
        with prometheus_server(tmp_path, tmp_path / "tsdb", config) as server:
            up = server.wait_until("the guarded exporter scraped", lambda: [
                float(series["value"][1]) for series in server.query('up{job="netatmo"}')
                if float(series["value"][1]) == 1.0])
            netatmo_up = server.query('netatmo_up{job="netatmo"}')

    assert up == [1.0]
    assert [float(series["value"][1]) for series in netatmo_up] == [1.0]


def test_alert_rules_load_and_flag_the_broken_modules(prometheus: PrometheusServer) -> None:
    def evaluated() -> list[Answer]:
        rules = _rules(prometheus)
        return rules if all(rule["health"] != "unknown" for rule in rules) else []

    rules = prometheus.wait_until("evaluated rules", evaluated)
    assert len(rules) == RULE_COUNT
    assert {rule["health"] for rule in rules} == {"ok"}

    expected = {("NetatmoModuleStale", "Grenier"), ("NetatmoModuleUnreachable", "Cave"),
                ("NetatmoModuleNeverPaired", "Pluie"), ("NetatmoBatteryLow", "Cave"),
                ("NetatmoHeatingBatteryLow", "Vanne bureau"),
                ("NetatmoHeatingModuleUnreachable", "Vanne bureau"),
                ("NetatmoRoomUnreachable", "Bureau"), ("NetatmoWindowOpenLong", "Chambre"),
                ("NetatmoHomeStatusFailing", "Chalet")}

    def pending() -> set[tuple[str, str]]:
        alerts = prometheus.api("alerts")["alerts"]
        found = {(a["labels"]["alertname"], _subject(a["labels"])) for a in alerts}
        return found if expected <= found else set()

    assert prometheus.wait_until("pending module alerts", pending) == expected


def test_every_dashboard_query_runs(prometheus: PrometheusServer) -> None:
    prometheus.wait_until("three scrapes", lambda: prometheus.query(
        "count_over_time(netatmo_up[1m]) >= 3"))
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"]
             for target in panel.get("targets", [])]
    empty = []
    for expr in exprs:
        promql = re.sub(r'"\$\w+"', '".*"', expr).replace("$__rate_interval", "1m")
        if not prometheus.query(promql):
            empty.append(promql)

    assert len(exprs) > 40
    assert {"netatmo_room_setpoint_temperature_celsius", "netatmo_module_boiler_on",
            "netatmo_room_heating_power_request_ratio", "netatmo_energy_errors_total"} <= {
        name for expr in exprs for name in re.findall(r"netatmo_[a-z_]+", expr)}
    assert empty == [EMPTY_WHEN_HEALTHY]


def _subject(labels: dict[str, str]) -> str:
    return labels.get("module") or labels.get("room") or labels.get("home", "")


def _rules(prometheus: PrometheusServer) -> list[Answer]:
    return [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
