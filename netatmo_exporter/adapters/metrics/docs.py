"""docs/metrics.md's table, from the metric catalogs:
`python -m netatmo_exporter.adapters.metrics.docs --markdown`."""

from __future__ import annotations

import sys

from netatmo_exporter.adapters.lan.refusals import REFUSALS_METRIC
from netatmo_exporter.adapters.metrics.energy_metrics import ENERGY_METRICS
from netatmo_exporter.adapters.metrics.history_collector import HISTORY_METRICS
from netatmo_exporter.adapters.metrics.spec import MetricSpec
from netatmo_exporter.adapters.metrics.weather_metrics import WEATHER_METRICS

METRICS: tuple[MetricSpec, ...] = (*WEATHER_METRICS, *ENERGY_METRICS, REFUSALS_METRIC,
                                   *HISTORY_METRICS)


def markdown_table() -> str:
    """The metric table of docs/metrics.md."""
    rows = ["| name | type | labels | unit | meaning | compatibility |",
            "|---|---|---|---|---|---|"]
    for spec in METRICS:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "none"
        meaning = spec.text.replace("|", "\\|")
        origin = "Go-compatible" if spec.go else "new"
        rows.append(f"| `{spec.name}` | {spec.kind} | {labels} | {spec.unit or '-'} | "
                    f"{meaning} | {origin} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["--markdown"]:
        print("usage: python -m netatmo_exporter.adapters.metrics.docs --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
