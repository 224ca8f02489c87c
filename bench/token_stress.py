"""Token stress: every writer of the token file at once, against 2-second tokens, for a
bounded time (issue 22's "done when").

    python bench/token_stress.py [--seconds 600] [--cycle 15]

The simulator answers the token endpoint only after rotating the refresh token and a
delay (`--token-delay`, default 0.2 s), so a write that lands in that window would bury
the rotated token. Running together:

- the service (`python -m netatmo_exporter`, fixed mode, data every 2 s, a control socket),
  renewing its 2-second tokens about every 1.8 s;
- a backfill beside it, run again and again (the real `backfill` command: access tokens
  and bookings through the service's control socket);
- a second process renewing and flushing from the token file itself, as a backfill that
  misses the socket does (`tests/support/token_writer.py`, a round every 0.5 s);
- every `--cycle` seconds: three `flush` requests (what `ExecStop=` sends), a refresh
  token pasted on the status page, then SIGTERM and a restart of the service.

Printed: the invalid_grant answers of the token endpoint (each one a lost authorization),
whether the token on disk is still valid at the end (the refresh tokens lost), renewals,
pastes, the slowest flush and the slowest stop (SIGTERM to exit), and the errors each
process met.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netatmo_exporter.adapters.system.control_client import request_flush  # noqa: E402
from netatmo_exporter.adapters.system.token_file import FileTokenStore  # noqa: E402
from netatmo_exporter.domain.authorization.token import Token  # noqa: E402
from netatmo_exporter.simulator import FakeNetatmoCloud, Fault, demo_account  # noqa: E402
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, free_port, wait_until  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


class Service:
    def __init__(self, cloud: FakeNetatmoCloud, work: Path) -> None:
        self.cloud = cloud
        self.work = work
        self.token_file = work / "token.json"
        self.socket = work / "control.sock"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.stops: list[float] = []
        self.exits: Counter[int] = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        return ["--api-url", self.cloud.base_url, "--token-file", str(self.token_file),
                "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]

    def start(self) -> None:
        with open(self.work / "service.log", "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                [sys.executable, "-m", "netatmo_exporter", "--addr", f"127.0.0.1:{self.port}",
                 "--control-socket", str(self.socket), "--refresh-mode", "fixed",
                 "--refresh-interval", "2s", "--age-stale", "1h", *self.args()],
                stdout=log, stderr=subprocess.STDOUT, env=ENV)
        wait_until("service started (see service.log)", lambda: httpx.get(
            self.url + "/-/healthy", timeout=1.0).status_code == 200, 20.0,
            ignoring=(httpx.HTTPError,))

    def stop(self) -> None:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self.stops.append(time.monotonic() - started)
        self.exits[code] += 1


def paste(service: Service, cloud: FakeNetatmoCloud) -> str:
    """A refresh token pasted on the status page; its answer's status, or the error."""
    try:
        with httpx.Client(base_url=service.url, timeout=30.0) as browser:
            page = browser.get("/").text
            match = re.search(r'name="form_token" value="([0-9a-f]+)"', page)
            if match is None:
                return "no form"
            answer = browser.post("/auth/settoken", headers={"Origin": service.url}, data={
                "form_token": match.group(1), "refresh_token": cloud.mint_refresh_token()})
            return str(answer.status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


def backfills(service: Service, cloud: FakeNetatmoCloud, stop: threading.Event,
              outcomes: Counter[str]) -> None:
    """Backfills one after the other; one cut short by a restart of the service is run
    again as is (it continues), a finished one is started afresh."""
    output = service.work / "history.om"
    while not stop.is_set():
        output.unlink(missing_ok=True)
        result = subprocess.run(  # noqa: S603 - our interpreter, our arguments
            [sys.executable, "-m", "netatmo_exporter", "backfill", *service.args(),
             "--control-socket", str(service.socket), "--from", "6h", "--to", "1h",
             "--output", str(output)], capture_output=True, text=True, env=ENV, check=False)
        last = (result.stderr.strip().splitlines() or ["(nothing)"])[-1]
        restarted = "no longer answers" in last
        outcomes["ok" if result.returncode == 0 else "cut short by a restart (continued)"
                 if restarted else f"exit {result.returncode}: {last[:100]}"] += 1
        stop.wait(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--cycle", type=float, default=15.0)
    parser.add_argument("--token-delay", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stress") as name, FakeNetatmoCloud(
            CLIENT_ID, CLIENT_SECRET, account=demo_account(frozen=True)) as cloud:
        work = Path(name)
        cloud.set_token_lifetime(2.0)
        cloud.inject("token", Fault.delay(args.token_delay), times=None)
        grant = cloud.issue_tokens()
        FileTokenStore(work / "token.json").save(Token.from_grant(
            str(grant["access_token"]), str(grant["refresh_token"]), float(grant["expires_in"]),
            time.time(), ("read_station", "read_homecoach")).authorized(time.time()))
        service = Service(cloud, work)
        service.start()
        writer = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
            [sys.executable, "-m", "tests.support.token_writer", "--api-url", cloud.base_url,
             "--token-file", str(service.token_file), "--rounds", "1000000", "--seconds",
             str(args.seconds + 60), "--pause", "0.5", "--stop-file", str(work / "stop")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        stop = threading.Event()
        backfill_outcomes: Counter[str] = Counter()
        backfilling = threading.Thread(target=backfills,
                                       args=(service, cloud, stop, backfill_outcomes))
        backfilling.start()
        flushes: list[float] = []
        flush_failures: Counter[str] = Counter()
        pastes: Counter[str] = Counter()
        deadline = time.monotonic() + args.seconds
        cycles = 0
        while time.monotonic() < deadline:
            cycles += 1
            for _ in range(3):
                stop.wait(args.cycle / 6)
                started = time.monotonic()
                code, message = request_flush(str(service.socket), 10.0)
                flushes.append(time.monotonic() - started)
                if code:
                    flush_failures[message[:80]] += 1
            pastes[paste(service, cloud)] += 1
            stop.wait(args.cycle / 6)
            service.stop()
            service.start()
        stop.set()
        (work / "stop").touch()
        writer_out, writer_err = writer.communicate(timeout=120)
        backfilling.join(300)
        service.stop()
        on_disk = FileTokenStore(service.token_file).load()
        alive = on_disk is not None and on_disk.refresh_token in cloud.valid_refresh_tokens()
        writer_result = json.loads(writer_out or "{}")
        print(f"token stress: {args.seconds:g} s, {cycles} cycles, 2-second tokens, token "
              f"endpoint answering {args.token_delay:g} s after rotating")
        print(f"  invalid_grant answers:          {cloud.count('invalid_grant')}")
        print(f"  refresh tokens lost:            {0 if alive else 1} "
              f"(the token on disk {'is' if alive else 'is NOT'} valid at the end)")
        print(f"  renewals:                       {cloud.count('refresh_grants')}")
        print(f"  pastes (status: count):         {dict(pastes)}")
        print(f"  flushes: {len(flushes)}, slowest {max(flushes):.2f} s, "
              f"failed {dict(flush_failures) or 0}")
        print(f"  stops: {len(service.stops)}, slowest {max(service.stops):.2f} s, "
              f"median {sorted(service.stops)[len(service.stops) // 2]:.2f} s, "
              f"exit codes {dict(service.exits)}")
        print(f"  backfill runs:                  {dict(backfill_outcomes)}")
        print(f"  file renewer: {writer_result.get('rounds', '?')} rounds, errors "
              f"{writer_result.get('errors', writer_err[-200:])}")
    return 0 if alive and cloud.count("invalid_grant") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
