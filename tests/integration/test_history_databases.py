"""End to end into real databases: the simulated cloud's stored history -> `netatmo-exporter
backfill` beside a running exporter -> promtool's blocks served by a real Prometheus, and
the same range as a text exposition imported into a real VictoriaMetrics. Both read back
exactly the readings the simulator's own history generator says Netatmo stored (its
holes included), under the labels the live exporter gives the same modules and rooms."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netatmo_exporter.simulator import (
    Account,
    FakeNetatmoCloud,
    demo_account,
    demo_history,
)
from netatmo_exporter.simulator.history import DAY, today
from tests.conftest import exporter_args
from tests.integration.test_promtool import ALL_SCOPES, DemoScrape, parse_scrape
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, REPO, ExporterProcess, seed_token
from tests.support.tsdb import Labels, Samples, prometheus_on_blocks, victoria_metrics

KPH_TO_MPS = 1 / 3.6
"""As the live collector converts gusts (km/h times 1/3.6)."""
TYPES: Mapping[str, tuple[str, ...]] = {
    "NAMain": ("temperature", "humidity", "co2", "pressure", "noise"),
    "NAModule1": ("temperature", "humidity"),
    "NAModule2": ("windstrength", "windangle", "guststrength", "gustangle"),
    "NAModule3": ("rain",),
    "NAModule4": ("temperature", "humidity", "co2"),
    "NHC": ("temperature", "humidity", "co2", "pressure", "noise", "health_idx"),
}
"""What getmeasure stores per module type (the spec's appendix)."""
FAMILIES: Mapping[str, tuple[str, float]] = {
    "temperature": ("netatmo_sensor_temperature_celsius", 1.0),
    "humidity": ("netatmo_sensor_humidity_percent", 1.0),
    "co2": ("netatmo_sensor_co2_ppm", 1.0),
    "pressure": ("netatmo_sensor_pressure_mb", 1.0),
    "noise": ("netatmo_sensor_noise_db", 1.0),
    "windstrength": ("netatmo_sensor_wind_strength_kph", 1.0),
    "windangle": ("netatmo_sensor_wind_direction_degrees", 1.0),
    "guststrength": ("netatmo_sensor_gust_strength_meters_per_second", KPH_TO_MPS),
    "gustangle": ("netatmo_sensor_gust_direction_degrees", 1.0),
    "rain": ("netatmo_sensor_rain_amount_mm", 1.0),
    "health_idx": ("netatmo_sensor_health_index", 1.0),
}
ROOM_FAMILIES: Mapping[str, str] = {
    "temperature": "netatmo_room_temperature_celsius",
    "sp_temperature": "netatmo_room_setpoint_temperature_celsius",
}
HISTORY_FAMILIES = {name for name, _ in FAMILIES.values()} | set(ROOM_FAMILIES.values())
NETATMO = '{__name__=~"netatmo_.+"}'
ATELIER, CAVE = "70:ee:50:00:00:02", "03:00:00:00:00:03"


@dataclass
class Setup:
    cloud: FakeNetatmoCloud
    exporter: ExporterProcess
    live: DemoScrape
    workdir: Path
    begin: int
    end: int

    @property
    def extra_labels(self) -> tuple[tuple[str, str], ...]:
        return (("job", "netatmo"), ("instance", f"127.0.0.1:{self.exporter.port}"))

    def backfill(self, output: Path, *flags: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.command("--output", str(output), *flags),
                                capture_output=True, text=True, timeout=120, check=False,
                                env=self.environment())
        assert result.returncode == 0, result.stderr
        assert "through the running exporter" in result.stderr
        return result

    def command(self, *flags: str, begin: int | None = None, end: int | None = None
                ) -> list[str]:
        """The backfill of the range (or of `begin` to `end`) beside the running exporter,
        with the extra labels."""
        settings = exporter_args(self.cloud, self.workdir / "token.json", "--scope",
                                 " ".join(ALL_SCOPES), "--control-socket",
                                 str(self.workdir / "control.sock"))
        labels = [arg for name, value in self.extra_labels
                  for arg in ("--label", f"{name}={value}")]
        return [sys.executable, "-m", "netatmo_exporter", "backfill", *settings,
                "--from", _rfc3339(self.begin if begin is None else begin),
                "--to", _rfc3339(self.end if end is None else end),
                "--hourly-calls", "400", *labels, *flags]

    @staticmethod
    def environment() -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("history")
    anchor = today()
    account = demo_account(history=demo_history(anchor))
    # No rate limits here: a code 26 costs the backfill a minute's wait, and sharing the
    # budget with the running exporter is what tests/integration/test_backfill.py proves.
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=account) as cloud:
        yield from _with_exporter(cloud, workdir, anchor)


def _with_exporter(cloud: FakeNetatmoCloud, workdir: Path, anchor: int) -> Iterator[Setup]:
    token = workdir / "token.json"
    seed_token(cloud, token, scope=ALL_SCOPES)
    exporter = ExporterProcess(
        exporter_args(cloud, token, "--scope", " ".join(ALL_SCOPES), "--control-socket",
                      str(workdir / "control.sock"), "--age-stale", "1h"), workdir)
    try:
        exporter.start(wait_ready=True)
        live = _live_scrape(exporter)
        # Two days holding Atelier's outage and the hour Cave stopped reporting.
        yield Setup(cloud, exporter, live, workdir, anchor - 3 * DAY, anchor - DAY - 1)
    finally:
        if exporter.proc is not None and exporter.proc.poll() is None:
            exporter.terminate()


def _live_scrape(exporter: ExporterProcess, timeout: float = 20.0) -> DemoScrape:
    """/metrics once the Energy rooms are in it too (they are polled beside the weather)."""
    return parse_scrape(exporter.metrics_when(lambda body: "netatmo_room_info{" in body,
                                              "Energy rooms on /metrics", timeout))


def _rfc3339(stamp: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def stored_history(setup: Setup) -> Samples:
    """What the simulator stored in the range, labelled by the live exporter's
    netatmo_module_info / netatmo_room_info rows of the same module or room."""
    return stored_readings(setup.cloud.account, setup.live, setup.begin, setup.end,
                           setup.extra_labels)


def stored_readings(account: Account, live: DemoScrape, begin: int, end: int,
                    extra_labels: tuple[tuple[str, str], ...]) -> Samples:
    """Every reading `account` stored in [begin, end], under the labels `live` (a scrape of
    the exporter) gives the same module or room plus `extra_labels`."""
    expected: Samples = {}

    def add(family: str, labels: Mapping[str, str], readings: list[tuple[float, float]]
            ) -> None:
        if readings:
            key = frozenset({"__name__": family, **labels, **dict(extra_labels)}.items())
            expected[key] = readings

    for station, module_id, kind in _weather_sources(account):
        series = account.weather_series(station, module_id)
        assert series is not None
        labels = _info_labels(live, "netatmo_module_info", "module_id",
                              module_id or station, ("module", "station", "home"))
        for measure in TYPES[kind]:
            family, factor = FAMILIES[measure]
            add(family, labels, [
                (float(stamp), value * factor) for stamp, (value,) in
                account.history.readings(series, (measure,), begin, end)
                if value is not None])
    for home in account.energy_homes:
        for room in home.rooms:
            series = account.room_series(home.id, room.id)
            assert series is not None
            labels = _info_labels(live, "netatmo_room_info", "room_id", room.id,
                                  ("room", "home"))
            for measure, family in ROOM_FAMILIES.items():
                add(family, labels, [
                    (float(stamp), float(value)) for stamp, (value,) in
                    account.history.readings(series, (measure,), begin, end)
                    if value is not None])
    return expected


def _weather_sources(account: Account) -> Iterator[tuple[str, str | None, str]]:
    for station in account.stations:
        yield station.id, None, "NAMain"
        yield from ((station.id, m.id, m.type) for m in station.modules if m.type in TYPES)
    yield from ((coach.id, None, "NHC") for coach in account.home_coaches)


def _info_labels(live: DemoScrape, info: str, id_label: str, wanted: str,
                 keep: tuple[str, ...]) -> dict[str, str]:
    for labels in live.series(info):
        if labels[id_label] == wanted:
            return {key: labels[key] for key in keep if labels.get(key)}
    raise AssertionError(f"the live exporter has no {info} for {wanted}")


def _module_labels(info: Mapping[str, str]) -> Labels:
    return frozenset((k, v) for k, v in info.items() if k in ("module", "station", "home") and v)


def _without(labels: Labels, names: tuple[str, ...]) -> Labels:
    return frozenset((k, v) for k, v in labels if k not in names)


def test_history_holes_are_in_the_expectation(setup: Setup) -> None:
    """The range really holds a station outage and a module that stopped."""
    (outage,) = setup.cloud.account.history.outages
    stopped = setup.cloud.account.history.stopped[CAVE]
    expected = stored_history(setup)
    atelier = _info_labels(setup.live, "netatmo_module_info", "module_id", ATELIER,
                           ("module",))
    cave = _info_labels(setup.live, "netatmo_module_info", "module_id", CAVE, ("module",))

    def times(module: dict[str, str]) -> list[float]:
        (found,) = [[t for t, _ in samples] for labels, samples in expected.items()
                    if ("__name__", "netatmo_sensor_temperature_celsius") in labels
                    and ("module", module["module"]) in labels]
        return found

    assert setup.begin < outage.start < outage.end < setup.end
    assert not [t for t in times(atelier) if outage.start <= t < outage.end]
    assert max(b - a for a, b in itertools.pairwise(times(atelier))) > 5 * 3600
    assert setup.begin < stopped < times(cave)[-1] + 600 < setup.end


@pytest.fixture(scope="module")
def in_prometheus(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> Samples:
    """Every netatmo_* sample a Prometheus serves from promtool's blocks of the backfill."""
    workdir = tmp_path_factory.mktemp("prometheus")
    output = workdir / "history.om"
    setup.backfill(output)
    with prometheus_on_blocks(output, workdir) as prometheus:
        return prometheus.samples(NETATMO, at=setup.end + 1)


def test_prometheus_on_promtools_blocks_answers_every_stored_reading(
        setup: Setup, in_prometheus: Samples) -> None:
    expected = stored_history(setup)

    assert sum(len(samples) for samples in in_prometheus.values()) > 10_000
    assert in_prometheus.keys() == expected.keys()
    assert in_prometheus == expected


def test_backfilled_series_carry_the_live_labels(setup: Setup, in_prometheus: Samples
                                                 ) -> None:
    """Every live series of a history family is backfilled under its very labels (but for
    a module type getmeasure does not know); the backfilled series the live exporter no
    longer shows (a stale or unreachable module) carry the labels of that module's live
    netatmo_module_info."""
    backfilled = {_without(labels, ("job", "instance")) for labels in in_prometheus}
    infos = setup.live.series("netatmo_module_info")
    modules = {_module_labels(info) for info in infos}
    unknown = {_module_labels(info) for info in infos  # weather modules have a station
               if info.get("station") and info["type"] not in TYPES}
    # An empty label value is no label at all in Prometheus (a Home Coach has no home).
    live = {frozenset({"__name__": name, **{k: v for k, v in labels if v}}.items())
            for name, labels in setup.live.samples if name in HISTORY_FAMILIES}
    skipped = {labels for labels in live if _without(labels, ("__name__",)) in unknown}

    assert len(unknown) == 1 and len(skipped) == 1
    assert live - skipped <= backfilled
    assert {_without(labels, ("__name__",)) for labels in backfilled - live} <= modules
    assert len(backfilled - live) >= 4  # Cave and Grenier, which are not fresh live
    assert {dict(labels)["instance"] for labels in in_prometheus} == {
        f"127.0.0.1:{setup.exporter.port}"}


def test_victoria_metrics_imports_the_same_range_and_reads_it_back(
        setup: Setup, tmp_path: Path) -> None:
    output = tmp_path / "history.prom"
    setup.backfill(output, "--format", "prometheus")

    with victoria_metrics(tmp_path) as vm:
        vm.import_prometheus(output.read_bytes())
        found = vm.export(NETATMO)

    expected = stored_history(setup)
    assert found.keys() == expected.keys()
    # VictoriaMetrics keeps 12 significant decimal digits: a gust of 39 km/h comes back as
    # 10.8333333333 m/s, not 10.833333333333334.
    within_12_digits: dict[Labels, Any] = {
        labels: [(t, pytest.approx(v, rel=1e-11)) for t, v in samples]
        for labels, samples in found.items()}
    assert within_12_digits == expected
    exact = {labels: samples for labels, samples in found.items()
             if ("__name__", "netatmo_sensor_gust_strength_meters_per_second") not in labels}
    assert exact == {labels: samples for labels, samples in expected.items() if labels in exact}
