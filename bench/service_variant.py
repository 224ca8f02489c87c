"""The service with one candidate cure of the scrape latency tail applied, to measure it
beside the plain service before changing the code (bench/benchmark.py --part tail).

    python bench/service_variant.py VARIANT [service flags...]

Variants: `plain` (nothing changed), `gc-freeze` (gc.freeze() once the service has
started: the start's objects leave the collector's generations), `gc-threshold` (the
youngest generation collected every 10,000 allocations instead of 700), `gc-off` (no
cyclic collection at all: how much of the tail the collector can be, at most),
`switch-1ms` (the interpreter hands the GIL over every 1 ms instead of 5 ms), `threads-1`
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

from netatmo_exporter.adapters.http_server import ServerLimits
from netatmo_exporter.entrypoints.bootstrap import build_app
from netatmo_exporter.entrypoints.cli import main
from netatmo_exporter.entrypoints.config import load_config

STARTED_AFTER = 2.0


def _freeze_once_started() -> None:
    time.sleep(STARTED_AFTER)
    gc.collect()
    gc.freeze()


def run(variant: str, flags: list[str]) -> int:
    if variant == "gc-freeze":
        threading.Thread(target=_freeze_once_started, daemon=True).start()
    elif variant == "gc-threshold":
        gc.set_threshold(10_000, 10, 10)
    elif variant == "gc-off":
        gc.disable()
    elif variant == "switch-1ms":
        sys.setswitchinterval(0.001)
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
