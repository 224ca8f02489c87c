"""promtool's work on a backfill file: wall time, CPU time and peak RSS of
`promtool tsdb create-blocks-from openmetrics`, with Prometheus' default block duration and
with the `--max-block-duration` the backfill's summary prints.

    python bench/promtool_blocks.py [--days 30] [--input FILE] [--durations default,744h]

Without `--input`, the file is made as `bench/history.py` makes it (a ten-module account
from the simulator, `--days` back from 3 hours ago). promtool reads the whole file once per
block-duration window, so with the default (2 hours) its work grows with the file's size
times the number of two-hour windows in the range. Printed per duration: blocks written,
wall time, CPU time (user + system, from wait4) and peak RSS (`ru_maxrss`).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import history  # noqa: E402  (bench/history.py)

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool_run(source: Path, blocks: Path, duration: str) -> tuple[int, float, float, int]:
    """(blocks written, wall seconds, CPU seconds, peak RSS in KiB) of one promtool run."""
    flags = [] if duration == "default" else [f"--max-block-duration={duration}"]
    started = time.monotonic()
    child = subprocess.Popen(  # noqa: S603 - Debian's promtool, our arguments
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", *flags, "--quiet",
         str(source), str(blocks)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    assert child.stderr is not None
    errors = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"promtool failed: {errors}")
    written = sum(1 for entry in blocks.iterdir() if (entry / "meta.json").is_file())
    return written, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--input", type=Path, help="an OpenMetrics backfill file to use")
    parser.add_argument("--durations", default="default,744h",
                        help="comma-separated --max-block-duration values ('default': none)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netatmo-promtool-bench-") as workdir:
        work = Path(workdir)
        source = args.input
        if source is None:
            made = history.run(args.days, 120.0, 250, "openmetrics", work)
            print(f"made {made.samples:,} samples ({made.size / 1e6:.0f} MB) of {args.days} "
                  "days, ten modules")
            source = work / "history.om"
        print(f"| --max-block-duration | blocks | wall time | CPU time | peak RSS |\n"
              f"|---|---|---|---|---|   ({source.stat().st_size / 1e6:.0f} MB file)")
        for duration in args.durations.split(","):
            blocks = work / f"blocks-{duration}"
            written, wall, cpu, rss = promtool_run(source, blocks, duration)
            print(f"| {duration} | {written} | {wall:.0f} s | {cpu:.0f} s | "
                  f"{rss / 1024:.0f} MiB |", flush=True)
            shutil.rmtree(blocks)
    version = subprocess.run([PROMTOOL, "--version"], capture_output=True, text=True,  # noqa: S603
                             check=False).stdout.splitlines()[0]
    print(f"\n{version}; {platform.machine()}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
