"""The time-series database fixtures (tests/support/tsdb.py) on small hand-written files:
what promtool turns into blocks a Prometheus serves, and what VictoriaMetrics imports, is
read back sample for sample, escaped label values and old timestamps included."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tsdb import (
    Samples,
    create_blocks,
    prometheus_on_blocks,
    victoria_metrics,
)

ODD = 'Jardin "Süd" \\ T'
OPENMETRICS = """\
# HELP netatmo_sensor_temperature_celsius Temperature.
# TYPE netatmo_sensor_temperature_celsius gauge
netatmo_sensor_temperature_celsius{module="Jardin \\"Süd\\" \\\\ T"} 12.3 1700000003
netatmo_sensor_temperature_celsius{module="Jardin \\"Süd\\" \\\\ T"} -0.5 1700000301.5
netatmo_sensor_temperature_celsius{module="Salon"} 21.5 1600000000
netatmo_sensor_temperature_celsius{module="Salon"} 21.25 1700000000
# HELP netatmo_sensor_co2_ppm CO2.
# TYPE netatmo_sensor_co2_ppm gauge
netatmo_sensor_co2_ppm{module="Salon"} 620 1700000000
# EOF
"""
EXPOSITION = """\
# TYPE netatmo_sensor_temperature_celsius gauge
netatmo_sensor_temperature_celsius{module="Jardin \\"Süd\\" \\\\ T"} 12.3 1700000003000
netatmo_sensor_temperature_celsius{module="Jardin \\"Süd\\" \\\\ T"} -0.5 1700000301500
netatmo_sensor_temperature_celsius{module="Salon"} 21.5 1600000000000
netatmo_sensor_temperature_celsius{module="Salon"} 21.25 1700000000000
netatmo_sensor_co2_ppm{module="Salon"} 620 1700000000000
"""


def labels(name: str, module: str) -> frozenset[tuple[str, str]]:
    return frozenset({"__name__": name, "module": module}.items())


EXPECTED: Samples = {
    labels("netatmo_sensor_temperature_celsius", ODD): [(1700000003.0, 12.3),
                                                        (1700000301.5, -0.5)],
    labels("netatmo_sensor_temperature_celsius", "Salon"): [(1600000000.0, 21.5),
                                                          (1700000000.0, 21.25)],
    labels("netatmo_sensor_co2_ppm", "Salon"): [(1700000000.0, 620.0)],
}


def test_prometheus_serves_promtools_blocks_sample_for_sample(tmp_path: Path) -> None:
    source = tmp_path / "history.om"
    source.write_text(OPENMETRICS, encoding="utf-8")

    with prometheus_on_blocks(source, tmp_path) as prometheus:
        everything = prometheus.samples()
        salon = prometheus.samples('netatmo_sensor_temperature_celsius{module="Salon"}',
                                   at=1650000000)

    assert everything == EXPECTED
    assert salon == {labels("netatmo_sensor_temperature_celsius", "Salon"):
                     [(1600000000.0, 21.5)]}


def test_promtool_refuses_a_file_without_eof(tmp_path: Path) -> None:
    source = tmp_path / "truncated.om"
    source.write_text(OPENMETRICS.replace("# EOF\n", ""), encoding="utf-8")

    with pytest.raises(AssertionError, match="promtool refused"):
        create_blocks(source, tmp_path / "tsdb")


def test_victoria_metrics_imports_an_exposition_and_exports_it_back(tmp_path: Path) -> None:
    with victoria_metrics(tmp_path) as vm:
        vm.import_prometheus(EXPOSITION.encode())
        everything = vm.export()
        co2 = vm.export("netatmo_sensor_co2_ppm")

    assert everything == EXPECTED
    assert co2 == {labels("netatmo_sensor_co2_ppm", "Salon"): [(1700000000.0, 620.0)]}
