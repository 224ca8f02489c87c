"""Benchmark: the exporter's /metrics against a bare prometheus_client server, side by side.

    python bench/benchmark.py [--quick] [--output docs/benchmark.md] [--before REV]
                              [--part all|footprint|tail]

Measures with `wrk` (Debian package `wrk`): throughput and latency with and without
keep-alive against the baseline (bench/bare_server.py serving the same families); the
same while the simulated cloud answers data calls after 5 s and while it is down; cold
start against a bare import of the same libraries; resident memory after 100 and 10,000
scrapes; and a large account against the demo account. Footprint: with PyPI's libraries
(this interpreter) and Debian's (/usr/bin/python3 with the python3-* packages), the
service's resident memory after start and after 5,000 scrapes, and its p50, p99,
throughput and CPU per scrape under 8 keep-alive clients, beside the bare server and,
with --before REV, beside the service as it was at REV, in alternating rounds of one run.
Tail: the same load on the service with each candidate cure of the p99 tail applied
(bench/service_variant.py), beside the plain service in each round. Prints the figures and
writes them, with the machine they came from, to the output file (not in --quick mode
unless --output is given); --part footprint or tail measures only that part and replaces
only its section of the output file.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netatmo_exporter.simulator import (  # noqa: E402
    Account,
    FakeNetatmoCloud,
    Fault,
    demo_account,
    large_account,
)
from netatmo_exporter.simulator.accounts import (  # noqa: E402
    DEMO_HOME_COACHES,
    DEMO_STATIONS,
    DEMO_USER,
)
from tests.support.harness import (  # noqa: E402
    CLIENT_ID,
    CLIENT_SECRET,
    free_port,
    http_get,
    seed_token,
    self_signed_certificate,
    wait_until,
)
from tests.support.tls_front import tls_proxy  # noqa: E402

LIBRARIES = ("httpx", "tenacity", "structlog", "bottle", "prometheus_client", "waitress",
             "yaml", "bcrypt")
DISTRIBUTIONS = ("httpx", "tenacity", "structlog", "bottle", "prometheus-client", "waitress",
                 "PyYAML", "bcrypt")
# Targets against the bare prometheus_client server, side by side in one run (issue 9):
# keep-alive, as Prometheus scrapes; Connection: close, as a one-off curl does.
TARGETS = {"keep-alive": (9.0, 0.15), "Connection: close": (4.0, 1 / 3)}


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0


@dataclass(frozen=True)
class Settings:
    duration: int
    connections: int
    rounds: int
    scrapes_small: int
    scrapes_large: int
    cold_starts: int
    footprint_scrapes: int = 5_000
    tail_rounds: int = 5
    tail_duration: int = 5
    variants: tuple[str, ...] = ("switch-5ms", "gc-freeze", "gc-threshold", "gc-off",
                                 "threads-1", "threads-2", "log-error")
    go_exporter: str | None = None
    """The Go exporter's binary, run beside ours in the footprint (`--go-exporter`)."""


FULL = Settings(duration=8, connections=8, rounds=2, scrapes_small=100, scrapes_large=10_000,
                cold_starts=5)
QUICK = Settings(duration=2, connections=8, rounds=1, scrapes_small=100, scrapes_large=1_000,
                 cold_starts=2, footprint_scrapes=300, tail_rounds=1, tail_duration=1,
                 variants=("gc-freeze",))
PYTHONS = {"PyPI": sys.executable, "Debian": "/usr/bin/python3"}
"""The library sets: this interpreter's (a virtual environment with PyPI's releases) and
Debian's system interpreter with the python3-* packages."""


# -- processes ---------------------------------------------------------------------------

OPENSSL_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")
"""Left out of every server's environment, as systemd starts the service without them (a
shell may set them: a whole bundle then loads at start)."""


class Process:
    def __init__(self, args: list[str], workdir: Path, name: str, python: str = sys.executable,
                 tree: Path = REPO, env: dict[str, str] | None = None) -> None:
        """`python`: the program to run with `args` (an interpreter, or a binary)."""
        self.port = free_port()
        self.log = workdir / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                [python, *[a.replace("{port}", str(self.port)) for a in args]],
                stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                env={**{name: value for name, value in os.environ.items()
                        if name not in OPENSSL_VARIABLES},
                     "PYTHONPATH": str(tree), **(env or {})})
        self.started = time.perf_counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, path: str, timeout: float = 30.0) -> float:
        """Seconds from spawn until `path` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.log.name} exited:\n{self.log.read_text()}")
            try:
                if http_get(self.url + path, timeout=1.0)[0] == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.005)
        raise SystemExit(f"{path} not ready within {timeout}s:\n{self.log.read_text()}")

    def rss_mb(self) -> float:
        return self.memory_mb()[0]

    def memory_mb(self) -> tuple[float, float]:
        """Resident memory now and at its peak (VmRSS, VmHWM)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return tuple(  # type: ignore[return-value]
            int(match.group(1)) / 1024 if match else float("nan")
            for match in (re.search(rf"{key}:\s+(\d+) kB", status)
                          for key in ("VmRSS", "VmHWM")))

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@contextmanager
def exporter(cloud: FakeNetatmoCloud, workdir: Path, name: str, *extra: str,
             python: str = sys.executable, tree: Path = REPO,
             command: tuple[str, ...] = ("-m", "netatmo_exporter"),
             log_level: str | None = "warn") -> Iterator[Process]:
    """The service in a process of its own; `log_level` None leaves the default (info)."""
    token = workdir / f"{name}-token.json"
    seed_token(cloud, token)
    process = Process([*command, "--addr", "127.0.0.1:{port}", "--api-url",
                       cloud.base_url, "--token-file", str(token), "--client-id", CLIENT_ID,
                       "--client-secret", CLIENT_SECRET,
                       *(["--log-level", log_level] if log_level else []), *extra],
                      workdir, name, python, tree)
    try:
        process.wait_for("/-/ready")
        yield process
    finally:
        process.stop()


@contextmanager
def bare_server(exposition: str, workdir: Path, python: str = sys.executable
                ) -> Iterator[Process]:
    path = workdir / "exposition.txt"
    path.write_text(exposition)
    process = Process([str(REPO / "bench" / "bare_server.py"), str(path), "{port}"], workdir,
                      "bare", python)
    try:
        process.wait_for("/metrics")
        yield process
    finally:
        process.stop()


GO_EXPORTER = "Go exporter"


def go_comparable_account() -> Account:
    """The demo account without what the Go exporter cannot serve: its second module named
    "Chambre" (Go answers every scrape with a 500 for the duplicate series) and the station
    and module without names."""
    main, _, chalet = DEMO_STATIONS
    modules = (*main.modules[:-1], replace(main.modules[-1], name="Chambre d'amis"))
    return Account(user=DEMO_USER, stations=(replace(main, modules=modules), chalet),
                   home_coaches=DEMO_HOME_COACHES[:1], frozen=True)


@contextmanager
def go_exporter(binary: str, cloud: FakeNetatmoCloud, workdir: Path, name: str
                ) -> Iterator[Process]:
    """The Go exporter with a token of the simulated cloud. It calls the fixed address
    https://api.netatmo.net: an HTTPS proxy (`HTTPS_PROXY`, which Go obeys) ends each tunnel
    in TLS with a certificate for that name, trusted through `SSL_CERT_FILE`, and forwards to
    the simulated cloud. Ready once a scrape (which starts its first refresh) shows data."""
    key, cert = self_signed_certificate(workdir, "api.netatmo.net")
    token = workdir / f"{name}-token.json"
    seed_token(cloud, token)
    with tls_proxy(cloud.port, key, cert) as proxy:
        process = Process(["--addr", "127.0.0.1:{port}", "--client-id", CLIENT_ID,
                           "--client-secret", CLIENT_SECRET, "--token-file", str(token)],
                          workdir, name, binary,
                          env={"HTTPS_PROXY": proxy, "SSL_CERT_FILE": str(cert),
                               "NO_PROXY": ""})
        try:
            process.wait_for("/metrics")
            wait_until("data on the Go exporter's /metrics",
                       lambda: "netatmo_up 1" in http_get(process.url + "/metrics")[1], 30.0,
                       every=0.2, detail=process.log.read_text)
            yield process
        finally:
            process.stop()


# -- measurements ------------------------------------------------------------------------

def wrk(url: str, settings: Settings, keep_alive: bool, duration: int | None = None) -> Load:
    command = ["wrk", "-t1", f"-c{settings.connections}",
               f"-d{duration or settings.duration}s", "--latency", url + "/metrics"]
    if not keep_alive:
        command[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?"
                                            r"timeout) (\d+)", out))
    errors += sum(int(n) for n in re.findall(
        r"Socket errors: connect (\d+), read (\d+), write (\d+)", out)[0]) if (
        "Socket errors" in out) else 0
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Load(rate, _latency(out, "50%"), _latency(out, "99%"), errors, requests)


def _latency(out: str, percentile: str) -> float:
    match = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", out)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def best_of(loads: list[Load]) -> Load:
    """The round with the median throughput: other engineers' tests add noise."""
    ranked = sorted(loads, key=lambda load: load.requests_per_second)
    return ranked[len(ranked) // 2]


def scrape(url: str, count: int, clients: int = 4) -> None:
    host, port = url.removeprefix("http://").split(":")

    def worker(share: int) -> None:
        for _ in range(share):
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            connection.request("GET", "/metrics")
            connection.getresponse().read()
            connection.close()

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, [count // clients] * clients))


def bare_import_rss_mb() -> float:
    """Resident memory of an interpreter that has only imported the exporter's libraries."""
    code = (f"import {', '.join(LIBRARIES)}, re; print(re.search(r'VmRSS:\\s+(\\d+)', "
            "open('/proc/self/status').read()).group(1))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,  # noqa: S603
                         text=True, check=True).stdout
    return int(out) / 1024


def cold_start(cloud: FakeNetatmoCloud, workdir: Path, settings: Settings) -> tuple[float, float]:
    starts, imports = [], []
    for index in range(settings.cold_starts):
        token = workdir / f"cold-{index}.json"
        seed_token(cloud, token)
        process = Process(["-m", "netatmo_exporter", "--addr", "127.0.0.1:{port}", "--api-url",
                           cloud.base_url, "--token-file", str(token), "--client-id", CLIENT_ID,
                           "--client-secret", CLIENT_SECRET], workdir, f"cold-{index}")
        try:
            starts.append(process.wait_for("/-/healthy"))
        finally:
            process.stop()
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import " + ", ".join(LIBRARIES)],  # noqa: S603
                       check=True)
        imports.append(time.perf_counter() - began)
    return statistics.median(starts), statistics.median(imports)


def render_time(account_cloud: FakeNetatmoCloud, workdir: Path, name: str, favorites: bool
                ) -> tuple[float, int, int]:
    """Median ms to build the exposition without the cache, its bytes and series."""
    from prometheus_client import generate_latest

    from netatmo_exporter.entrypoints.bootstrap import build_app
    from netatmo_exporter.entrypoints.config import load_config

    token = workdir / f"render-{name}.json"
    seed_token(account_cloud, token)
    args = ["--addr", "127.0.0.1:0", "--api-url", account_cloud.base_url, "--token-file",
            str(token), "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
            "--log-level", "error"]
    sink = open(os.devnull, "w")
    app = build_app(load_config([*args, *(["--favorites"] if favorites else [])], {}),
                    log_stream=sink)
    app.start()
    try:
        deadline = time.monotonic() + 30
        while app.refresher.state().snapshot is None and time.monotonic() < deadline:
            time.sleep(0.05)
        timings = []
        body = b""
        for _ in range(30):
            began = time.perf_counter()
            body = generate_latest(app.registry)
            timings.append((time.perf_counter() - began) * 1000)
        series = sum(1 for line in body.decode().splitlines() if line and line[0] != "#")
        return statistics.median(timings), len(body), series
    finally:
        app.stop()
        sink.close()


# -- footprint and tail (issue 23) -------------------------------------------------------

@dataclass(frozen=True)
class Footprint:
    after_start_mb: float
    after_scrapes_mb: float
    peak_mb: float
    load: Load
    cpu_ms_per_scrape: float


def keep_alive_scrapes(url: str, count: int) -> None:
    """`count` scrapes one after the other on one kept-alive connection, as Prometheus."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for _ in range(count):
            connection.request("GET", "/metrics")
            connection.getresponse().read()
    finally:
        connection.close()


def loaded(process: Process, settings: Settings) -> tuple[Load, float]:
    """Keep-alive load for `tail_duration` seconds; the load and the CPU ms per scrape."""
    used = process.cpu_seconds()
    load = wrk(process.url, settings, True, settings.tail_duration)
    return load, (process.cpu_seconds() - used) * 1000 / max(load.requests, 1)


def alternating_rounds(servers: dict[str, Process], settings: Settings
                       ) -> dict[str, list[tuple[Load, float]]]:
    """`tail_rounds` rounds of `loaded`, the servers in turn within each round, in reverse
    order every other round, so that the machine's other work weighs on each alike."""
    rounds: dict[str, list[tuple[Load, float]]] = {name: [] for name in servers}
    for index in range(settings.tail_rounds):
        order = list(servers.items())
        for name, process in order[::-1] if index % 2 else order:
            rounds[name].append(loaded(process, settings))
    return rounds


def median_load(rounds: list[tuple[Load, float]]) -> tuple[Load, float]:
    """Each figure's median over the rounds."""
    def median(pick: Callable[[tuple[Load, float]], float]) -> float:
        return statistics.median(pick(each) for each in rounds)
    return Load(median(lambda r: r[0].requests_per_second), median(lambda r: r[0].p50_ms),
                median(lambda r: r[0].p99_ms), sum(r[0].errors for r in rounds),
                sum(r[0].requests for r in rounds)), median(lambda r: r[1])


def tree_at(revision: str, workdir: Path) -> Path:
    """The package as it was at `revision`, unpacked beside the run."""
    tree = workdir / f"tree-{revision}"
    tree.mkdir()
    archive = subprocess.run(  # noqa: S603
        ["git", "-C", str(REPO), "archive", revision, "netatmo_exporter"],  # noqa: S607
        capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)],  # noqa: S603, S607
                   input=archive, check=True)
    return tree


def footprint(settings: Settings, say: Callable[[str], None], workdir: Path,
              before: str | None) -> dict[str, dict[str, Footprint]]:
    """For each library set: the bare server, the service at `before` and as it is now, all
    running at once; memory after start and after the scrapes, then load in alternating
    rounds."""
    trees = {**({f"service at {before}": tree_at(before, workdir)} if before else {}),
             "service": REPO}
    results: dict[str, dict[str, Footprint]] = {}
    for libraries, python in PYTHONS.items():
        if not Path(python).exists():
            continue
        account = (go_comparable_account() if settings.go_exporter
                   else demo_account(frozen=True))
        with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=account
                              ) as cloud, ExitStack() as running:
            servers = {name: running.enter_context(exporter(
                cloud, workdir, f"{libraries}-{index}", python=python, tree=tree,
                log_level=None)) for index, (name, tree) in enumerate(trees.items())}
            exposition = http_get(servers["service"].url + "/metrics")[1]
            servers = {"bare prometheus_client": running.enter_context(
                bare_server(exposition, workdir, python)), **servers}
            if settings.go_exporter:
                servers[GO_EXPORTER] = running.enter_context(go_exporter(
                    settings.go_exporter, cloud, workdir, f"{libraries}-go"))
            time.sleep(1.0)
            started = {name: process.memory_mb()[0] for name, process in servers.items()}
            for process in servers.values():
                keep_alive_scrapes(process.url, settings.footprint_scrapes)
            scraped = {name: process.memory_mb() for name, process in servers.items()}
            rounds = alternating_rounds(servers, settings)
            results[libraries] = {}
            for name in servers:
                load, cpu = median_load(rounds[name])
                results[libraries][name] = Footprint(started[name], scraped[name][0],
                                                     scraped[name][1], load, cpu)
                say(f"{libraries:6} {name:24} RSS {started[name]:5.1f} MB after start, "
                    f"{scraped[name][0]:5.1f} MB after {settings.footprint_scrapes} scrapes "
                    f"(peak {scraped[name][1]:5.1f}); p50 {load.p50_ms:6.2f} ms p99 "
                    f"{load.p99_ms:6.2f} ms {load.requests_per_second:7.0f} req/s "
                    f"{cpu:5.3f} ms CPU per scrape")
    return results


def tail(settings: Settings, say: Callable[[str], None], workdir: Path
         ) -> dict[str, tuple[float, float, float, Load]]:
    """Each candidate cure beside the plain service, every process running at once, one
    round each in turn; per candidate the median over the rounds of its p99, p50 and
    throughput as a ratio to the plain service's in the same round, and its median load."""
    names = ("plain", *settings.variants)
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=demo_account(frozen=True)
                          ) as cloud, ExitStack() as running:
        servers = {name: running.enter_context(exporter(
            cloud, workdir, f"variant-{name}", command=(
                str(REPO / "bench" / "service_variant.py"), name), log_level=None))
            for name in names}
        for process in servers.values():
            keep_alive_scrapes(process.url, settings.footprint_scrapes)
        rounds = alternating_rounds(servers, settings)
    results = {}
    for name in names:
        pairs = list(zip(rounds[name], rounds["plain"], strict=True))
        ratios = tuple(statistics.median(pick(ours[0]) / pick(plain[0]) for ours, plain in pairs)
                       for pick in (lambda load: load.p99_ms, lambda load: load.p50_ms,
                                    lambda load: load.requests_per_second))
        load = median_load(rounds[name])[0]
        results[name] = (*ratios, load)
        say(f"tail {name:13} p99 {load.p99_ms:6.2f} ms (x{ratios[0]:.2f} of plain), p50 "
            f"{load.p50_ms:5.2f} ms (x{ratios[1]:.2f}), {load.requests_per_second:6.0f} req/s "
            f"(x{ratios[2]:.2f})")
    return results


# -- the run -----------------------------------------------------------------------------

@dataclass
class Results:
    comparison: dict[str, tuple[Load, Load]]
    degraded: dict[str, Load]
    cold_start: tuple[float, float]
    memory: dict[str, float]
    accounts: dict[str, tuple[float, int, int, float]]
    settings: Settings
    footprint: dict[str, dict[str, Footprint]]
    tail: dict[str, tuple[float, float, float, Load]]
    before: str | None


def run_parts(settings: Settings, say: Callable[[str], None], parts: str,
              before: str | None) -> Results:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="netatmo-bench-"))
    try:
        results = (run(settings, say, workdir) if parts == "all"
                   else Results({}, {}, (0.0, 0.0), {}, {}, settings, {}, {}, before))
        if parts in ("all", "footprint"):
            results.footprint = footprint(settings, say, workdir, before)
        if parts in ("all", "tail"):
            results.tail = tail(settings, say, workdir)
        results.before = before
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(settings: Settings, say: Callable[[str], None], workdir: Path) -> Results:
    comparison: dict[str, tuple[Load, Load]] = {}
    degraded: dict[str, Load] = {}
    memory: dict[str, float] = {}
    accounts: dict[str, tuple[float, int, int, float]] = {}
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=demo_account(frozen=True)) as cloud:
        with exporter(cloud, workdir, "exporter") as ours:
            exposition = http_get(ours.url + "/metrics")[1]
            with bare_server(exposition, workdir) as bare:
                for keep_alive in (True, False):
                    label = "keep-alive" if keep_alive else "Connection: close"
                    ours_runs, bare_runs = [], []
                    for _ in range(settings.rounds):
                        bare_runs.append(wrk(bare.url, settings, keep_alive))
                        ours_runs.append(wrk(ours.url, settings, keep_alive))
                    comparison[label] = (best_of(ours_runs), best_of(bare_runs))
                    say(_comparison_line(label, *comparison[label]))
            scrape(ours.url, settings.scrapes_small)
            memory["after_small"] = ours.rss_mb()
            scrape(ours.url, settings.scrapes_large - settings.scrapes_small)
            memory["after_large"] = ours.rss_mb()
            memory["bare_import"] = bare_import_rss_mb()
            say(f"memory: {memory['after_small']:.1f} MB after {settings.scrapes_small} "
                f"scrapes, {memory['after_large']:.1f} MB after {settings.scrapes_large}; "
                f"a bare interpreter importing the same libraries: "
                f"{memory['bare_import']:.1f} MB")
            accounts["demo"] = (*render_time(cloud, workdir, "demo", False), ours.rss_mb())
        with exporter(cloud, workdir, "degraded", "--refresh-interval", "1s") as slow:
            degraded["normal"] = wrk(slow.url, settings, True)
            cloud.inject("getstationsdata", Fault.delay(5.0), times=None)
            degraded["data calls answered after 5 s"] = wrk(slow.url, settings, True)
            cloud.clear_faults()
            cloud.inject("getstationsdata", Fault.connection_reset(), times=None)
            cloud.inject("token", Fault.connection_reset(), times=None)
            degraded["Netatmo down"] = wrk(slow.url, settings, True)
            cloud.clear_faults()
            for label, load in degraded.items():
                say(f"{label:32} p50 {load.p50_ms:7.2f} ms  p99 {load.p99_ms:7.2f} ms  "
                    f"{load.requests_per_second:8.0f} req/s")
        started = cold_start(cloud, workdir, settings)
        say(f"cold start to /-/healthy: {started[0] * 1000:.0f} ms; bare import of "
            f"{', '.join(LIBRARIES)}: {started[1] * 1000:.0f} ms")
    big = large_account(stations=50, modules_per_station=6, favorites=10, frozen=True)
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=big) as big_cloud:
        with exporter(big_cloud, workdir, "large", "--favorites") as large:
            scrape(large.url, settings.scrapes_small)
            accounts["large"] = (*render_time(big_cloud, workdir, "large", True), large.rss_mb())
    for name, (ms, size, series, rss) in accounts.items():
        say(f"{name:6} account: {series:6} series, {size / 1024:7.1f} KiB, uncached render "
            f"{ms:7.2f} ms, exporter RSS {rss:.1f} MB")
    return Results(comparison, degraded, started, memory, accounts, settings, {}, {}, None)


def _comparison_line(label: str, ours: Load, bare: Load) -> str:
    return (f"{label:18} exporter {ours.requests_per_second:8.0f} req/s p50 {ours.p50_ms:6.2f} ms "
            f"p99 {ours.p99_ms:6.2f} ms | bare {bare.requests_per_second:8.0f} req/s "
            f"p50 {bare.p50_ms:6.2f} ms p99 {bare.p99_ms:6.2f} ms | "
            f"x{ours.requests_per_second / bare.requests_per_second:.1f} throughput, "
            f"p50 {ours.p50_ms / bare.p50_ms:.2f} of bare")


# -- the report --------------------------------------------------------------------------

def machine(load_at_start: float) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    versions = []
    for name in DISTRIBUTIONS:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} ?")
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True,  # noqa: S607
                                 text=True, check=False).stdout.split("\n")[0].strip()
    return [
        f"- CPU: {model.group(1).strip() if model else platform.processor()}, "
        f"{os.cpu_count()} cores; 1-minute load average when the run started "
        f"{load_at_start:.2f}",
        f"- {platform.system()} {platform.release()}, Python {platform.python_version()} "
        f"({sys.executable})",
        f"- {', '.join(versions)}; {wrk_version or 'wrk'}",
    ]


def markdown(results: Results, started_at: datetime, load_at_start: float) -> str:
    s = results.settings
    lines = [
        "# Benchmark",
        "",
        f"Produced by `python bench/benchmark.py` on {started_at:%Y-%m-%d %H:%M} UTC. "
        "Machines like this one are noisy: compare the ratios, measured side by side in "
        "one run, rather than the absolute numbers.",
        "",
        "## Machine",
        "",
        *machine(load_at_start),
        "",
        "## /metrics against a bare prometheus_client server",
        "",
        f"`wrk -t2 -c{s.connections} -d{s.duration}s --latency`, {s.rounds} alternating "
        "rounds per server, the median round kept. The baseline is `bench/bare_server.py`: "
        "`prometheus_client.start_http_server` in its own process, rendering the same metric "
        "families (the exporter's own exposition, parsed once) on every scrape.",
        "",
        "| connections | exporter req/s | p50 ms | p99 ms | bare req/s | p50 ms | p99 ms "
        "| throughput ratio | p50 ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, (ours, bare) in results.comparison.items():
        lines.append(
            f"| {label} | {ours.requests_per_second:.0f} | {ours.p50_ms:.2f} | "
            f"{ours.p99_ms:.2f} | {bare.requests_per_second:.0f} | {bare.p50_ms:.2f} | "
            f"{bare.p99_ms:.2f} | {ours.requests_per_second / bare.requests_per_second:.1f}x | "
            f"{ours.p50_ms / bare.p50_ms:.2f} |")
    lines += [
        "",
        "Target: at least 4x the bare server's throughput at no more than 1/3 of its p50.",
        "",
        "## While Netatmo is slow or down",
        "",
        "An exporter with a 1 s refresh interval, keep-alive load as above.",
        "",
        "| cloud | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    for label, load in results.degraded.items():
        lines.append(f"| {label} | {load.requests_per_second:.0f} | {load.p50_ms:.2f} | "
                     f"{load.p99_ms:.2f} |")
    start, imports = results.cold_start
    lines += [
        "",
        "## Cold start",
        "",
        f"Median of {s.cold_starts}: process spawn to the first 200 from `/-/healthy` "
        f"**{start * 1000:.0f} ms**; `python -c 'import {', '.join(LIBRARIES)}'` "
        f"**{imports * 1000:.0f} ms** ({start / imports:.1f}x).",
        "",
        "## Memory",
        "",
        f"Resident set of the exporter process (demo account): "
        f"**{results.memory['after_small']:.1f} MB** after {s.scrapes_small} scrapes, "
        f"**{results.memory['after_large']:.1f} MB** after {s.scrapes_large} "
        f"(growth {results.memory['after_large'] - results.memory['after_small']:+.1f} MB). "
        "Target: at most 30 MB. For scale: an interpreter that has only imported "
        f"{', '.join(LIBRARIES)} holds **{results.memory['bare_import']:.1f} MB**.",
        "",
        "## Account size",
        "",
        "Large account: `large_account(stations=50, modules_per_station=6, favorites=10)` "
        "with `--favorites`. Render = building the exposition without the cache "
        "(`generate_latest` on the exporter's registry, median of 30).",
        "",
        "| account | series | exposition KiB | render ms | render µs/series | exporter RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, (ms, size, series, rss) in results.accounts.items():
        lines.append(f"| {name} | {series} | {size / 1024:.1f} | {ms:.2f} | "
                     f"{ms * 1000 / series:.1f} | {rss:.1f} |")
    return "\n".join([*lines, "", "## Against the targets", "", *verdicts(results), "",
                      *footprint_section(results), "", *tail_section(results)]) + "\n"


FOOTPRINT_TITLE = "## Footprint and latency with PyPI's and Debian's libraries"
TAIL_TITLE = "## The p99 tail: candidates measured side by side"


def footprint_section(results: Results) -> list[str]:
    s = results.settings
    lines = [
        FOOTPRINT_TITLE,
        "",
        *textwrap.wrap(
        f"{'The demo account' if not s.go_exporter else GO_ACCOUNT}; every server of a "
        "library set runs at once, with the default log "
        f"level. Memory: VmRSS one second after `/-/ready`, then VmRSS and VmHWM (peak) after "
        f"{s.footprint_scrapes:,} scrapes one after the other on one kept-alive connection. "
        f"Then `wrk -t1 -c{s.connections} -d{s.tail_duration}s` (keep-alive), {s.tail_rounds} "
        "rounds, the servers in turn within each round (reversed every other round); each "
        "figure is the median over the "
        "rounds. CPU per scrape: the process's user and system time during the rounds over "
        "the requests answered. PyPI: this interpreter with the virtual environment's "
        "releases; Debian: /usr/bin/python3 with the python3-* packages (bookworm here). "
        "Every server runs without the shell's SSL_CERT_FILE and SSL_CERT_DIR, as under "
        "systemd. "
        + (GO_TEXT if s.go_exporter else
           "The Go exporter was not given (--go-exporter), so it is not in the table."),
        width=92),  # lintian refuses lines past 512 characters in the source package
        "",
        "| libraries | server | RSS after start MB | after scrapes MB | peak MB | p50 ms "
        "| p99 ms | req/s | CPU ms per scrape |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for libraries, servers in results.footprint.items():
        for name, each in servers.items():
            lines.append(
                f"| {libraries} | {name} | {each.after_start_mb:.1f} | "
                f"{each.after_scrapes_mb:.1f} | {each.peak_mb:.1f} | {each.load.p50_ms:.2f} | "
                f"{each.load.p99_ms:.2f} | {each.load.requests_per_second:.0f} | "
                f"{each.cpu_ms_per_scrape:.3f} |")
    lines.append("")
    for libraries, servers in results.footprint.items():
        lines.append(f"- {libraries}: {footprint_verdict(servers)}")
    return lines


GO_ACCOUNT = ("The demo account without its duplicate and missing module names (which the "
              "Go exporter answers with a 500)")
GO_TEXT = ("The Go exporter: the binary given with --go-exporter, with a token of the same "
           "simulated cloud, which it reaches as https://api.netatmo.net through an HTTPS "
           "proxy (tests/support/tls_front.py); its own memory after its first refresh, "
           "which a scrape starts.")

MEMORY_TARGET_MB = 32.0
"""Issue 23: the service's RSS after start and after 5,000 scrapes, with either library set."""


def footprint_verdict(servers: dict[str, Footprint]) -> str:
    ours, bare = servers["service"], servers["bare prometheus_client"]
    most = max(ours.after_start_mb, ours.after_scrapes_mb)
    text = (f"the service holds {ours.after_start_mb:.1f} MB after start and "
            f"{ours.after_scrapes_mb:.1f} MB after the scrapes (target: at most "
            f"{MEMORY_TARGET_MB:g} MB): {'met' if most <= MEMORY_TARGET_MB else 'NOT met'}; "
            f"{ours.load.requests_per_second / bare.load.requests_per_second:.1f}x the bare "
            f"server's throughput at {ours.load.p99_ms / bare.load.p99_ms:.2f} of its p99")
    before = next((each for name, each in servers.items() if name.startswith("service at")),
                  None)
    if before is not None:
        text += (f"; against the service before: {ours.after_start_mb - before.after_start_mb:+.1f}"
                 f" MB after start, {ours.after_scrapes_mb - before.after_scrapes_mb:+.1f} MB "
                 f"after the scrapes, p99 x{ours.load.p99_ms / before.load.p99_ms:.2f}, "
                 f"p50 x{ours.load.p50_ms / before.load.p50_ms:.2f}, throughput "
                 f"x{ours.load.requests_per_second / before.load.requests_per_second:.2f}, CPU "
                 f"per scrape x{ours.cpu_ms_per_scrape / before.cpu_ms_per_scrape:.2f}")
    go = servers.get(GO_EXPORTER)
    if go is not None:
        text += (f"; against the Go exporter: p99 x{ours.load.p99_ms / go.load.p99_ms:.2f} "
                 f"(target: at most 1), p50 x{ours.load.p50_ms / go.load.p50_ms:.2f}, "
                 f"throughput x{ours.load.requests_per_second / go.load.requests_per_second:.2f}"
                 f", RSS x{ours.after_scrapes_mb / go.after_scrapes_mb:.2f} after the scrapes, "
                 f"CPU per scrape x{ours.cpu_ms_per_scrape / go.cpu_ms_per_scrape:.2f}")
    return text + "."


def tail_section(results: Results) -> list[str]:
    s = results.settings
    lines = [
        TAIL_TITLE,
        "",
        "`bench/service_variant.py` applies one candidate to the service; every variant runs "
        f"at once, under `wrk -t1 -c{s.connections} -d{s.tail_duration}s` (keep-alive), "
        f"{s.tail_rounds} rounds, the variants in turn within each round (reversed every "
        "other round). Ratios are to the "
        "plain service in the same round (median over the rounds); below 1 is better for "
        "p99 and p50, above 1 for throughput.",
        "",
        "| variant | p99 ms | p99 ratio | p50 ms | p50 ratio | req/s | throughput ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (p99, p50, rate, load) in results.tail.items():
        lines.append(f"| {name} | {load.p99_ms:.2f} | {p99:.2f} | {load.p50_ms:.2f} | "
                     f"{p50:.2f} | {load.requests_per_second:.0f} | {rate:.2f} |")
    return lines


def replace_section(text: str, title: str, section: list[str]) -> str:
    """`text` with its section `title` (to the next `## `) replaced, or `section` added."""
    start = text.find(title + "\n")
    if start < 0:
        return text.rstrip("\n") + "\n\n" + "\n".join(section) + "\n"
    end = text.find("\n## ", start + len(title))
    rest = "" if end < 0 else text[end:]
    return text[:start] + "\n".join(section) + "\n" + rest


def verdicts(results: Results) -> list[str]:
    lines = []
    for label, (ours, bare) in results.comparison.items():
        ratio, p50 = ours.requests_per_second / bare.requests_per_second, ours.p50_ms / bare.p50_ms
        least, most = TARGETS.get(label, (4.0, 1 / 3))
        met = "met" if ratio >= least and p50 <= most else "NOT met"
        lines.append(f"- {label}: {ratio:.1f}x the throughput at {p50:.2f} of the p50 "
                     f"(target: at least {least:g}x, at most {most:.2f}): {met}.")
    rss = results.memory["after_large"]
    if rss <= 30:
        lines.append(f"- Memory: {rss:.1f} MB: met.")
    else:
        lines.append(
            f"- Memory: {rss:.1f} MB: NOT met. The libraries alone take "
            f"{results.memory['bare_import']:.1f} MB; the exporter adds "
            f"{rss - results.memory['bare_import']:.1f} MB (its threads, the httpx client's TLS "
            "context, the snapshot and the cached expositions). Memory does not grow with the "
            "number of scrapes.")
    demo, large = results.accounts.get("demo"), results.accounts.get("large")
    if demo and large:
        lines.append(
            f"- Scaling: {large[2] / demo[2]:.0f}x the series take {large[0] / demo[0]:.0f}x "
            f"the render time ({demo[0] * 1000 / demo[2]:.1f} vs "
            f"{large[0] * 1000 / large[2]:.1f} µs per series): "
            f"{_shape(demo[0] / demo[2], large[0] / large[2])}. A render happens at "
            "most once per second and per state change; scrapes in between are served from "
            "the cache.")
    return lines


def _shape(small_per_series: float, large_per_series: float) -> str:
    ratio = large_per_series / small_per_series
    if ratio <= 1.5:
        return "linear"
    return f"{ratio:.1f}x the cost per series for the large account, more than linear"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run that checks it works")
    parser.add_argument("--output", default=None,
                        help="where to write the report (default: docs/benchmark.md, "
                             "none with --quick)")
    parser.add_argument("--part", choices=("all", "footprint", "tail"), default="all",
                        help="measure one part only and replace only its section of the "
                             "output file (default: all)")
    parser.add_argument("--before", default=None, metavar="REV",
                        help="in the footprint, the service as it was at this git revision "
                             "too, beside today's")
    parser.add_argument("--go-exporter", default=None, metavar="PATH",
                        help="the Go netatmo-exporter's binary, run beside ours in the "
                             "footprint (it reaches the simulated cloud through a local "
                             "HTTPS proxy)")
    parser.add_argument("--variants", default=None, metavar="NAME,...",
                        help="the tail's candidates (default: "
                             f"{','.join(FULL.variants)}; see bench/service_variant.py)")
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"the footprint's and the tail's rounds (default: "
                             f"{FULL.tail_rounds})")
    args = parser.parse_args()
    started_at = datetime.now(UTC)
    load_at_start = os.getloadavg()[0]
    settings = QUICK if args.quick else FULL
    if args.variants is not None:
        settings = replace(settings, variants=tuple(filter(None, args.variants.split(","))))
    if args.rounds is not None:
        settings = replace(settings, tail_rounds=args.rounds)
    if args.go_exporter is not None:
        settings = replace(settings, go_exporter=args.go_exporter)
    results = run_parts(settings, lambda line: print(line, flush=True), args.part, args.before)
    output = args.output or (None if args.quick else str(REPO / "docs" / "benchmark.md"))
    if output and args.part == "all":
        Path(output).write_text(markdown(results, started_at, load_at_start))
        print(f"written to {output}")
    elif output:
        title, section = ((FOOTPRINT_TITLE, footprint_section(results))
                          if args.part == "footprint" else (TAIL_TITLE, tail_section(results)))
        path = Path(output)
        path.write_text(replace_section(path.read_text() if path.exists() else "", title,
                                        [*section, "", f"Measured {started_at:%Y-%m-%d %H:%M} "
                                         f"UTC; 1-minute load average at the start "
                                         f"{load_at_start:.2f}."]))
        print(f"section written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
