"""The service with one candidate cure of the scrape latency tail applied, to measure it
beside the plain service before changing the code (bench/benchmark.py --part tail).

    python bench/service_variant.py VARIANT [service flags...]

Variants: `plain` (nothing changed), `gc-freeze` (gc.freeze() once the service has
started: the start's objects leave the collector's generations), `gc-threshold` (the
youngest generation collected every 10,000 allocations instead of 700), `gc-off` (no
cyclic collection at all: how much of the tail the collector can be, at most),
`switch-5ms` (the GIL handed over every 5 ms, Python's default, set again once the service
has started: the service sets 1 ms since issue 23), `threads-1`
and `threads-2` (that many app threads instead of 4: fewer hand-offs of the GIL between
waitress's loop and its task threads), `log-error` (`--log-level error`: what logging
costs on the request path).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections.abc import Callable

from netatmo_exporter.adapters.web.http_server import ServerLimits
from netatmo_exporter.entrypoints.bootstrap import build_app
from netatmo_exporter.entrypoints.cli import main
from netatmo_exporter.entrypoints.config import load_config

STARTED_AFTER = 2.0


def _once_started(change: Callable[[], object]) -> None:
    def later() -> None:
        time.sleep(STARTED_AFTER)
        change()
    threading.Thread(target=later, daemon=True).start()


def _freeze() -> None:
    gc.collect()
    gc.freeze()


def run(variant: str, flags: list[str]) -> int:
    if variant == "gc-freeze":
        _once_started(_freeze)
    elif variant == "gc-threshold":
        gc.set_threshold(10_000, 10, 10)
    elif variant == "gc-off":
        gc.disable()
    elif variant == "switch-5ms":
        _once_started(lambda: sys.setswitchinterval(0.005))
    elif variant.startswith("threads-"):
        app = build_app(load_config(flags, os.environ),
                        server_limits=ServerLimits(threads=int(variant.removeprefix("threads-"))))
        return app.run_until_signalled(os.environ)
    elif variant == "log-error":
        flags = [*flags, "--log-level", "error"]
    elif variant != "plain":
        raise SystemExit(f"unknown variant {variant!r}")
    return main(flags)


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1], sys.argv[2:]))
