"""History benchmark: a year of a ten-module account backfilled from the simulator.

    python bench/history.py [--days 365] [--speedup 120] [--hourly-calls 250]
                            [--format openmetrics|prometheus|remote-write] [--output FILE]

The simulator serves `ten_module_account()`: two stations (a base station with five
modules, a base station with its outdoor module) and two Home Coaches, a reading about
every 5 minutes each for a year, with a station outage. Netatmo's per-user limits (50 calls
per 10 s, 500 per hour) are enforced with windows `--speedup` times shorter, and the
backfill runs as its own process (`run_backfill(..., budget_speedup=--speedup)`: its share
of the budget paced on the same compressed hour) from the token file, `--from <days>d`
to the default `--to` (3 hours ago; now with `--format remote-write`, which runs
`backfill --remote-write` into a VictoriaMetrics of its own and counts the samples it holds).

Printed: the wall time and what it stands for at Netatmo's real pace (wall time x
speedup: the pace is the budget's, not the CPU's, as long as the CPU time stays well under
the wall time), the calls the cloud answered (getmeasure and the listings), calls per
hour of Netatmo time, samples and bytes written, the backfill process's CPU time and peak
RSS (its own `ru_maxrss`, from wait4), and code-26 refusals (0: the pacing kept within
the limits).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netatmo_exporter.simulator import (  # noqa: E402
    Account,
    FakeNetatmoCloud,
    scaled_rate_limits,
    ten_module_account,
)
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, http_get, seed_token  # noqa: E402
from tests.support.tsdb import VictoriaMetrics, victoria_metrics  # noqa: E402

SCOPES = ("read_station", "read_homecoach")
CHILD = ("import os, sys\n"
         "from netatmo_exporter.entrypoints.backfill import run_backfill\n"
         "sys.exit(run_backfill(sys.argv[2:], dict(os.environ),"
         " budget_speedup=float(sys.argv[1])))\n")


@dataclass(frozen=True)
class Result:
    days: int
    speedup: float
    hourly_calls: int
    format: str
    wall: float
    cpu: float
    peak_rss_kib: int
    calls: int
    measure_calls: int
    readings: int
    rate_limited: int
    samples: int
    size: int
    fewest_calls: int

    @property
    def netatmo_hours(self) -> float:
        return self.wall * self.speedup / 3600

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("range", f"{self.days} days, 10 modules, {self.format}"),
            ("wall time", f"{self.wall:.0f} s at speedup {self.speedup:g}"),
            ("at Netatmo's pace", f"{self.netatmo_hours:.1f} h (--hourly-calls "
                                  f"{self.hourly_calls})"),
            ("calls", f"{self.calls} ({self.measure_calls} getmeasure; the fewest 1,024 "
                      f"readings per call allow: {self.fewest_calls})"),
            ("calls per hour", f"{self.calls / self.netatmo_hours:.0f} of Netatmo time"),
            ("readings per getmeasure", f"{self.readings / max(1, self.measure_calls):.0f}"),
            ("samples written", f"{self.samples:,}" + (
                f" ({self.size / 1e6:.0f} MB)" if self.size else " (held by VictoriaMetrics)")),
            ("backfill CPU time", f"{self.cpu:.0f} s"),
            ("backfill peak RSS", f"{self.peak_rss_kib / 1024:.1f} MiB"),
            ("code 26 refusals", str(self.rate_limited)),
        ]


def run(days: int, speedup: float, hourly_calls: int, fmt: str, workdir: Path) -> Result:
    token = workdir / "token.json"
    output = workdir / ("history.om" if fmt == "openmetrics" else "history.prom")
    with contextlib.ExitStack() as stack:
        cloud = stack.enter_context(FakeNetatmoCloud(
            CLIENT_ID, CLIENT_SECRET, account=ten_module_account(),
            rate_limits=scaled_rate_limits(speedup)))
        seed_token(cloud, token, scope=SCOPES)
        target = ["--output", str(output), "--format", fmt]
        receiver: VictoriaMetrics | None = None
        if fmt == "remote-write":
            receiver = stack.enter_context(victoria_metrics(workdir))
            target = ["--remote-write", receiver.write_url]
        args = ["--api-url", cloud.base_url, "--token-file", str(token),
                "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                "--scope", " ".join(SCOPES), "--control-socket", str(workdir / "none.sock"),
                "--from", f"{days * 24}h", *target, "--hourly-calls", str(hourly_calls)]
        started, now = time.monotonic(), time.time()
        fewest = _fewest_calls(cloud.account, now - days * 86400, now - 3 * 3600)
        with open(workdir / "backfill.log", "wb") as log:
            child = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                [sys.executable, "-c", CHILD, str(speedup), *args], stdout=log,
                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)},
                cwd=workdir)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        if child.returncode != 0:
            raise SystemExit(f"the backfill failed ({child.returncode}):\n"
                             + (workdir / "backfill.log").read_text())
        counters = cloud.counters
        if receiver is not None:
            samples, size = _held(receiver, days), 0
        else:
            samples = sum(1 for line in output.open(encoding="utf-8")
                          if not line.startswith("#"))
            size = output.stat().st_size
    return Result(days, speedup, hourly_calls, fmt, wall, usage.ru_utime + usage.ru_stime,
                  usage.ru_maxrss, sum(counters.get(f"{name}_ok", 0) for name in
                                       ("getmeasure", "getstationsdata", "gethomecoachsdata")),
                  counters.get("getmeasure_ok", 0), counters.get("measure_readings", 0),
                  counters.get("rate_limited", 0), samples, size, fewest)


def _held(receiver: VictoriaMetrics, days: int) -> int:
    """The netatmo_* samples VictoriaMetrics holds."""
    receiver.flush()
    query = f'sum(count_over_time({{__name__=~"netatmo_.+"}}[{days + 2}d]))'
    status, body = http_get(f"{receiver.url}/api/v1/query?"
                            + urllib.parse.urlencode({"query": query}), timeout=120.0)
    assert status == 200, body
    return int(float(json.loads(body)["data"]["result"][0]["value"][1]))


def _fewest_calls(account: Account, begin: float, end: float) -> int:
    """getmeasure calls that 1,024 readings per call need for every module of the account
    (the simulator's own count of its stored readings in the range)."""
    devices = [(s.id, None) for s in account.stations] + [
        (s.id, m.id) for s in account.stations for m in s.modules] + [
        (c.id, None) for c in account.home_coaches]
    calls = 0
    for device, module in devices:
        series = account.weather_series(device, module)
        assert series is not None
        stored = sum(1 for _ in account.history.times(series, int(begin), int(end)))
        calls += max(1, math.ceil(stored / 1024))
    return calls


def table(result: Result) -> str:
    return figure_table(result.rows())


def figure_table(rows: list[tuple[str, str]]) -> str:
    """The figures as a Markdown table, with the machine they were measured on."""
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    machine = (f"{platform.python_implementation()} {platform.python_version()}, "
               f"{os.cpu_count()} CPUs, {platform.machine()}")
    return "\n".join(lines) + f"\n\nMachine: {machine}; simulator in the benchmark's process.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--speedup", type=float, default=120.0,
                        help="how many times faster the budget's hour and 10 s pass")
    parser.add_argument("--hourly-calls", type=int, default=250,
                        help="the backfill's share of the 500 calls per hour (its default)")
    parser.add_argument("--format", choices=("openmetrics", "prometheus", "remote-write"),
                        default="openmetrics")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netatmo-history-bench-") as workdir:
        result = run(args.days, args.speedup, args.hourly_calls, args.format, Path(workdir))
    text = table(result)
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
