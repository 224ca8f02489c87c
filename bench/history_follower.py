"""History follower benchmark: what following a ten-module account costs, and what it
brings that live scraping alone does not.

    python bench/history_follower.py [--hours 24] [--outage-hours 24] [--output FILE]

The simulator serves `ten_module_account()` (two stations with six modules between them
and two Home Coaches, a reading about every 5 minutes each) on a clock the benchmark moves
(the cloud's data time and the follower's clock are one fake clock: a simulated day takes
seconds). The real follower runs with the real Netatmo client, the real remote-write
adapter (its requests counted and decoded by an in-process transport answering 204 or,
while the receiver is "down", 503) and the real checkpoint file, at the defaults
(`--history.interval 30m`, `--history.lookback 3h`).

Printed:

- steady state over `--hours`: getmeasure calls per hour, remote-write requests and bytes
  (snappy-compressed, as sent) per day, samples per day; the follower thread's CPU time per
  day (`time.thread_time` of the thread it runs on: fetch, decode, encode, checkpoint);
- a catch-up after the service was off for `--outage-hours`: the calls of the one look
  that fills it, and its CPU time;
- peak memory of the Python heap during the run (tracemalloc; an upper bound: the
  simulated cloud runs in the same process);
- one simulated day with two outages (the box off from 02:00 to 05:00, the receiver down
  from 14:00 to 14:45): the share of the day's stored readings that reach the receiver
  through the follower (measured: unique series and times it took), and through live
  scraping alone (counted from the same stored history: a station uploads every
  10 minutes the two readings it took, the live exporter shows the newest of them, and only
  while the box and Prometheus are up; a scraped value carries the scrape's time, not
  the reading's).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.history import figure_table  # noqa: E402
from netatmo_exporter.adapters.history.checkpoint import (  # noqa: E402
    FileCheckpointStore,
    checkpoint_path,
)
from netatmo_exporter.adapters.history.remote_write import RemoteWriteReceiver  # noqa: E402
from netatmo_exporter.adapters.netatmo.client import NetatmoClient  # noqa: E402
from netatmo_exporter.domain.history.follower import HistoryFollower  # noqa: E402
from netatmo_exporter.domain.history.plan import MEASURE_TYPES  # noqa: E402
from netatmo_exporter.domain.weather.model import Station  # noqa: E402
from netatmo_exporter.simulator import (  # noqa: E402
    FakeNetatmoCloud,
    demo_history,
    ten_module_account,
)
from netatmo_exporter.simulator.history import DAY  # noqa: E402
from tests.support.harness import CLIENT_ID, CLIENT_SECRET  # noqa: E402
from tests.support.remote_write import decode_write_request, snappy_decompress  # noqa: E402
from tests.unit.fakes import FakeClock, FakeLog  # noqa: E402

SCOPES = ("read_station", "read_homecoach")
INTERVAL = 1800.0
LOOKBACK = 3 * 3600.0
UPLOAD_PERIOD = 600
HOUR = 3600


class CloudTokens:
    """Access tokens minted by the simulated cloud, a new one when Netatmo refuses one."""

    def __init__(self, cloud: FakeNetatmoCloud) -> None:
        self._cloud = cloud
        self._token = self._mint()

    def _mint(self) -> str:
        return str(self._cloud.issue_tokens(SCOPES)["access_token"])

    def access_token(self) -> str:
        return self._token

    def reject_access_token(self, access_token: str) -> None:
        self._token = self._mint()


@dataclass
class Receiver:
    """Counts what the adapter sends; answers 503 while `down`."""

    down: bool = False
    requests: int = 0
    bytes: int = 0
    taken: set[tuple[frozenset[tuple[str, str]], int]] = field(default_factory=set)

    cpu: float = 0.0
    """Spent decoding here: not the follower's."""

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503, text="down for maintenance")
        started = time.thread_time()
        body = request.read()
        self.requests += 1
        self.bytes += len(body)
        for labels, samples in decode_write_request(snappy_decompress(body)):
            key = frozenset(labels.items())
            self.taken.update((key, millis // 1000) for millis, _ in samples)
        self.cpu += time.thread_time() - started
        return httpx.Response(204)


@dataclass
class Rig:
    clock: FakeClock
    cloud: FakeNetatmoCloud
    receiver: Receiver
    follower: HistoryFollower
    client: NetatmoClient

    def poll(self) -> float:
        wait = self.follower.poll_once()
        self.clock.advance(wait)
        return wait

    def run_until(self, end: float, skip: Callable[[float], float | None] = lambda _: None
                  ) -> None:
        """Polls as the follower asks until `end`; `skip(now)` returns when a box that is
        off at `now` comes back (None: it is on)."""
        while self.clock.now() < end:
            back = skip(self.clock.now())
            if back is not None:
                self.clock.current = back
                continue
            self.poll()


def build(clock: FakeClock, cloud: FakeNetatmoCloud, workdir: Path) -> Rig:
    tokens = CloudTokens(cloud)
    client = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, clock,
                           sleep=lambda _: None)
    token = tokens.access_token()
    stations: tuple[Station, ...] = (client.fetch_stations(token, False)
                                     + client.fetch_homecoaches(token))
    receiver = Receiver()
    remote_write = RemoteWriteReceiver(
        "http://receiver.invalid/api/v1/write",
        (("job", "netatmo"), ("instance", "box:9210")),
        transport=httpx.MockTransport(receiver.handle))
    store = FileCheckpointStore(checkpoint_path(str(workdir / "token.json")), FakeLog())
    follower = HistoryFollower(tokens, client, remote_write, store, clock, FakeLog(),
                               lookback=LOOKBACK, interval=INTERVAL,
                               stations=lambda: stations, wait=clock.wait)
    return Rig(clock, cloud, receiver, follower, client)


@dataclass(frozen=True)
class Result:
    hours: float
    outage_hours: float
    steady_calls: int
    steady_requests: int
    steady_bytes: int
    steady_samples: int
    steady_cpu: float
    catch_up_calls: int
    catch_up_cpu: float
    peak_heap: int
    stored: int
    by_follower: int
    by_live: int

    def rows(self) -> list[tuple[str, str]]:
        per_day = 24 / self.hours
        return [
            ("steady state: getmeasure calls per hour",
             f"{self.steady_calls / self.hours:.1f}"),
            ("steady state: remote-write requests per day",
             f"{self.steady_requests * per_day:.0f}"),
            ("steady state: bytes sent per day (snappy)",
             f"{self.steady_bytes * per_day / 1024:.0f} KiB"),
            ("steady state: samples written per day", f"{self.steady_samples * per_day:.0f}"),
            ("steady state: follower CPU per day", f"{self.steady_cpu * per_day:.2f} s"),
            (f"catch-up after {self.outage_hours:g} h off: calls", f"{self.catch_up_calls}"),
            (f"catch-up after {self.outage_hours:g} h off: follower CPU",
             f"{self.catch_up_cpu:.2f} s"),
            ("peak Python heap during the run (cloud included)",
             f"{self.peak_heap / 2**20:.1f} MiB"),
            ("a day with two outages: stored readings", f"{self.stored}"),
            ("  reaching the receiver with the follower",
             f"{self.by_follower} ({100 * self.by_follower / self.stored:.1f} %), "
             "each at its own time"),
            ("  reaching Prometheus by live scraping alone",
             f"{self.by_live} ({100 * self.by_live / self.stored:.1f} %), "
             "at the scrape's time"),
        ]


def _stored(cloud: FakeNetatmoCloud, begin: int, end: int) -> dict[str, list[int]]:
    """Each weather source's stored reading times in [begin, end) with a value (a reading
    Netatmo stored as null has nothing to write)."""
    account = cloud.account
    sources: list[tuple[str, str | None, str]] = [
        (station.id, None, "NAMain") for station in account.stations]
    sources += [(station.id, module.id, module.type) for station in account.stations
                for module in station.modules]
    sources += [(coach.id, None, "NHC") for coach in account.home_coaches]
    found: dict[str, list[int]] = {}
    for device_id, module_id, kind in sources:
        series = account.weather_series(device_id, module_id)
        if series is not None and kind in MEASURE_TYPES:
            found[series.key] = [
                t for t, values in account.history.readings(series, MEASURE_TYPES[kind],
                                                            begin, end - 1)
                if any(value is not None for value in values)]
    return found


def _seen_live(times: list[int], day: int, down: list[tuple[int, int]]) -> int:
    """Readings live scraping shows: the newest of each 10-minute upload, while up."""
    seen = set()
    for upload in range(day + UPLOAD_PERIOD, day + DAY + 1, UPLOAD_PERIOD):
        if any(start <= upload < stop for start, stop in down):
            continue
        newest = [t for t in times if upload - UPLOAD_PERIOD < t <= upload]
        if newest:
            seen.add(max(newest))
    return len(seen)


def run(hours: float, outage_hours: float, workdir: Path) -> Result:
    day = (int(time.time()) // DAY - 2) * DAY
    clock = FakeClock(float(day))
    account = ten_module_account(history=demo_history(day + 2 * DAY, days=30))
    tracemalloc.start()
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=account,
                          clock=clock.now) as cloud:
        rig = build(clock, cloud, workdir / "steady")
        rig.poll()  # the first look: the lookback
        calls, requests, sent = cloud.count("getmeasure"), rig.receiver.requests, \
            rig.receiver.bytes
        samples = rig.follower.state().samples_written
        cpu = time.thread_time() - rig.receiver.cpu
        rig.run_until(clock.now() + hours * HOUR)
        steady_cpu = time.thread_time() - rig.receiver.cpu - cpu
        steady = (cloud.count("getmeasure") - calls, rig.receiver.requests - requests,
                  rig.receiver.bytes - sent, rig.follower.state().samples_written - samples)

        clock.advance(outage_hours * HOUR)  # the service off: no look meanwhile
        calls, cpu = cloud.count("getmeasure"), time.thread_time() - rig.receiver.cpu
        rig.poll()
        catch_up = (cloud.count("getmeasure") - calls,
                    time.thread_time() - rig.receiver.cpu - cpu)
        rig.client.close()

        # One day with the box off 02:00-05:00 and the receiver down 14:00-14:45.
        day = int(clock.now()) // DAY * DAY + DAY
        clock.current = float(day)
        (workdir / "day").mkdir()
        rig = build(clock, cloud, workdir / "day")
        box_off = (day + 2 * HOUR, day + 5 * HOUR)
        receiver_down = (day + 14 * HOUR, day + 14 * HOUR + 2700)

        def off(now: float) -> float | None:
            rig.receiver.down = receiver_down[0] <= now < receiver_down[1]
            return float(box_off[1]) if box_off[0] <= now < box_off[1] else None

        rig.run_until(day + DAY + INTERVAL, off)
        stored = _stored(cloud, day, day + DAY)
        rig.client.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    taken_times = {when for _, when in rig.receiver.taken}
    by_follower = sum(1 for times in stored.values() for t in times if t in taken_times)
    by_live = sum(_seen_live(times, day, [box_off, receiver_down])
                  for times in stored.values())
    return Result(hours, outage_hours, *steady, steady_cpu, *catch_up, peak,
                  sum(len(times) for times in stored.values()), by_follower, by_live)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0,
                        help="how long the steady state runs (simulated hours)")
    parser.add_argument("--outage-hours", type=float, default=24.0,
                        help="how long the service is off before the catch-up")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netatmo-follower-bench-") as workdir:
        (Path(workdir) / "steady").mkdir()
        result = run(args.hours, args.outage_hours, Path(workdir))
    text = figure_table(result.rows())
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
