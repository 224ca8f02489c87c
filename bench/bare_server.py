"""The baseline: a bare prometheus_client HTTP server replaying a fixed exposition.

The exposition is parsed once at start; every scrape then renders those metric families
with prometheus_client's own exposition code, as a plain exporter's collector would.
Usage: python bench/bare_server.py EXPOSITION_FILE PORT
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable

from prometheus_client import start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry


class ReplayCollector:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        families = list(text_string_to_metric_families(handle.read()))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReplayCollector(families))
    start_http_server(int(sys.argv[2]), addr="127.0.0.1", registry=registry)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
