"""promtool on what we ship: the alerting rules, their unit tests, and a full scrape of the
exporter (simulated cloud, favourites on). promtool comes with Debian's `prometheus`
package; a missing tool fails the test rather than skipping it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netatmo_exporter.simulator import FakeNetatmoCloud, demo_account
from tests.conftest import exporter_args
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, REPO, ExporterProcess, seed_token
from tests.support.tsdb import require_tool

RULES = REPO / "monitoring" / "prometheus" / "netatmo-alerts.yml"
RULE_TESTS = REPO / "monitoring" / "prometheus" / "netatmo-alerts.test.yml"
DASHBOARD = REPO / "monitoring" / "grafana" / "netatmo-dashboard.json"
GO_NAME_PROMTOOL_FLAGS = (
    "netatmo_sensor_pressure_mb metric names should not contain abbreviated units")

ALL_SCOPES = ("read_station", "read_homecoach", "read_thermostat")
RULE_COUNT = 15

Series = tuple[str, frozenset[tuple[str, str]]]


def run_tool(*args: str, stdin: str | None = None, cwd: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


@dataclass
class DemoScrape:
    """One /metrics answer of an exporter reading the frozen demo account."""

    body: str
    samples: dict[Series, float]
    helps: dict[str, str]
    types: dict[str, str]
    openmetrics: str = ""

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for sample, labels in self.samples if sample == name]

    def module_labels(self, module_id: str) -> dict[str, str]:
        """The module/station/home labels of a module, found through netatmo_module_info."""
        for info in self.series("netatmo_module_info"):
            if info["module_id"] == module_id:
                return {key: info[key] for key in ("module", "station", "home")}
        raise AssertionError(f"no netatmo_module_info for {module_id}")

    def of(self, name: str, module_id: str) -> float | None:
        return self.value(name, **self.module_labels(module_id))


def parse_scrape(body: str) -> DemoScrape:
    samples: dict[Series, float] = {}
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(body):
        helps[family.name] = family.documentation
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return DemoScrape(body, samples, helps, types)


@contextmanager
def demo_exporter(workdir: Path, *extra: str, wait_ready: bool = True
                  ) -> Iterator[ExporterProcess]:
    """An exporter with favourites and Netatmo Energy on, reading the frozen demo account;
    ended by PID."""
    token_path = workdir / "token.json"
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=demo_account(frozen=True)) as cloud:
        seed_token(cloud, token_path, scope=ALL_SCOPES)
        exporter = ExporterProcess(
            exporter_args(cloud, token_path, "--favorites", "--scope", " ".join(ALL_SCOPES),
                          *extra), workdir)
        try:
            exporter.start(wait_ready=wait_ready)
            if wait_ready:
                _wait_for_energy(exporter)
            yield exporter
        finally:
            if exporter.proc is not None and exporter.proc.poll() is None:
                exporter.kill()


def _wait_for_energy(exporter: ExporterProcess, timeout: float = 20.0) -> None:
    """/-/ready waits for the weather data; the Energy poller runs beside it."""
    exporter.metrics_when(lambda body: "netatmo_home_status_up{" in body, "Energy data",
                          timeout)


@pytest.fixture(scope="module")
def full_scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_exporter(tmp_path_factory.mktemp("promtool")) as exporter:
        status, body = exporter.get("/metrics")
        assert status == 200
        yield body


def test_promtool_check_metrics_flags_only_the_go_pressure_name(full_scrape: str) -> None:
    promtool = require_tool("promtool")
    assert 'favorite="true"' in full_scrape
    assert "netatmo_sensor_health_index" in full_scrape
    assert 'netatmo_room_setpoint_mode{home="Maison",mode="manual",room="Chambre"} 1.0' \
        in full_scrape
    assert 'netatmo_module_battery_state{home="Maison",module="Vanne bureau"' in full_scrape
    assert 'netatmo_exporter_api_budget_calls{caller="weather",window="1h"}' in full_scrape

    result = run_tool(promtool, "check", "metrics", stdin=full_scrape)

    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert problems == [GO_NAME_PROMTOOL_FLAGS]


def test_promtool_check_rules_passes() -> None:
    result = run_tool(require_tool("promtool"), "check", "rules", str(RULES))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {RULE_COUNT} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    result = run_tool(require_tool("promtool"), "test", "rules", RULE_TESTS.name,
                      cwd=RULE_TESTS.parent)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.MULTILINE))
    tests = RULE_TESTS.read_text()
    firing = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", tests))
    quiet = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts: \[\]", tests))

    assert len(alerts) == RULE_COUNT
    assert firing == alerts
    assert quiet == alerts
