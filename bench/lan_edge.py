"""LAN edge benchmark: one hostile address against one Prometheus, for the full minute.

    python bench/lan_edge.py [--seconds 60] [--connections 1500] [--guessers 8]
                             [--owners 19] [--part all|flood|rotating|crowd]

Starts a real exporter process against the simulator, three times:

1. behind basic auth (bcrypt cost 10), while 127.0.0.2 loops wrong passwords on
   `--guessers` kept-alive connections: how long the first, uncached check of the right
   password from 127.0.0.3 takes, and the share of 127.0.0.3's scrapes (every 0.25 s, a
   fresh connection each) that answer 200;
2. behind basic auth, while `--guessers` connections guess from the 254 addresses
   127.0.0.2-255 in turn (a new connection from the next address for each guess): of
   `--owners` first, uncached checks of a right password (each its own user, from a fresh
   address 127.0.1.x, one every 2 s), how many answer 200 and how long each takes.
   IPv6: only ::1 exists on loopback, so rotating /64s cannot be measured here; their
   grouping (a /64 is one client, a /56 one history) is covered by tests/unit;
3. without auth, while 127.0.0.2 holds `--connections` connections (a third idle, a
   third trickling header bytes, a third kept alive with a request every 30 s; each
   reopened as soon as the server closes it): every fresh scrape from 127.0.0.3 (one a
   second) with its time.

Run it with the Python whose libraries you want to measure (/usr/bin/python3 for
Debian's, a virtualenv's for PyPI's). The figures go to standard output.
"""

from __future__ import annotations

import argparse
import base64
import resource
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import bcrypt  # noqa: E402

from netatmo_exporter.simulator import FakeNetatmoCloud, demo_account  # noqa: E402
from tests.support.harness import (  # noqa: E402
    CLIENT_ID,
    CLIENT_SECRET,
    ExporterProcess,
    authorized_process,
    http_get,
    metric_value,
)
from tests.support.lan_attack import (  # noqa: E402
    ROTATING,
    PasswordFlood,
    Scrapes,
    crowd_while_scraping,
    first_checks,
    raise_file_limit,
    scrape_from,
)

USER, PASSWORD = "prometheus", "scrape-pass"


def password_flood(workdir: Path, cloud: FakeNetatmoCloud, seconds: float, guessers: int
                   ) -> None:
    exporter = guarded_exporter(workdir, cloud, [(USER, PASSWORD)])
    try:
        flood = PasswordFlood(exporter.port, USER, connections=guessers,
                              limit=seconds + 30).start()
        try:
            time.sleep(2.0)
            first = scrape_from("127.0.0.3", exporter.port, (USER, PASSWORD))
            scrapes = Scrapes().run(exporter.port, seconds, 0.25, auth=(USER, PASSWORD))
        finally:
            flood.stop()
        time.sleep(1.1)  # /metrics answers from a cache for up to a second
        header = {"Authorization": "Basic " + base64.b64encode(
            f"{USER}:{PASSWORD}".encode()).decode()}
        _, body = http_get(exporter.url + "/metrics", timeout=10.0, headers=header)
        lines = sum(1 for line in exporter.logs().splitlines()
                    if "basic_auth_refused" in line or "basic_auth_busy" in line)
    finally:
        exporter.terminate()
    refused = {reason: metric_value(body, "netatmo_exporter_http_refusals_total",
                                    reason=reason) for reason in ("password_wrong",
                                                                  "password_busy")}
    answers = sum(flood.statuses.values())
    print(f"password flood: {guessers} connections from 127.0.0.2 for {seconds:.0f} s, "
          f"{answers} answers ({answers / seconds:.0f}/s): {dict(flood.statuses)}")
    print(f"  first uncached check of the right password from 127.0.0.3: {first[0]} "
          f"in {first[1] * 1000:.0f} ms (target: 200 within 2,000 ms)")
    print(f"  127.0.0.3's scrapes: {scrapes.summary()} (target: at least 95 %)")
    print(f"  counted {refused}; {lines} log lines about them")


def rotating_flood(workdir: Path, cloud: FakeNetatmoCloud, seconds: float, guessers: int,
                   owners: int) -> None:
    credentials = [(f"owner{n}", f"owner-pass-{n}") for n in range(owners)]
    exporter = guarded_exporter(workdir, cloud, [(USER, PASSWORD), *credentials])
    try:
        flood = PasswordFlood(exporter.port, USER, connections=guessers, limit=seconds + 60,
                              rotating=ROTATING).start()
        try:
            time.sleep(2.0)
            results = first_checks(exporter.port, credentials, every=2.0)
        finally:
            flood.stop()
    finally:
        exporter.terminate()
    answered = [took for status, took in results if status == 200]
    answers = sum(flood.statuses.values())
    took = sorted(took for _, took in results)
    print(f"rotating flood: {guessers} connections guessing from {len(ROTATING)} addresses "
          f"(127.0.0.2-255), {answers} answers: {dict(flood.statuses)}")
    print(f"  first uncached checks from fresh addresses: {len(answered)} of {len(results)} "
          f"answered 200 (others: {sorted(s for s, _ in results if s != 200)}), median "
          f"{took[len(took) // 2] * 1000:.0f} ms, slowest {took[-1] * 1000:.0f} ms "
          f"(target: all 200)")


def guarded_exporter(workdir: Path, cloud: FakeNetatmoCloud,
                     users: list[tuple[str, str]]) -> ExporterProcess:
    """An exporter process behind basic auth for `users` (bcrypt cost 10)."""
    web_config = workdir / f"web-{len(users)}.yml"
    web_config.write_text("basic_auth_users:\n" + "".join(
        f"  {user}: {bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()}\n"
        for user, password in users))
    return authorized_process(cloud, workdir / f"token-{len(users)}.json", workdir,
                              "--web.config.file", str(web_config)).start()


def connection_crowd(workdir: Path, cloud: FakeNetatmoCloud, seconds: float,
                     connections: int) -> None:
    exporter = authorized_process(cloud, workdir / "token-crowd.json", workdir)
    exporter.start(wait_ready=True)
    previous = raise_file_limit()
    try:
        crowd, scrapes = crowd_while_scraping(exporter.port, connections, seconds, every=1.0)
        _, body = exporter.get("/metrics")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, previous)
        exporter.terminate()
    closed = metric_value(body, "netatmo_exporter_http_refusals_total",
                          reason="connection_per_address")
    print(f"connection crowd: {connections} connections held from 127.0.0.2 for "
          f"{seconds:.0f} s; the server closed {crowd.reconnects} (the crowd reopened each), "
          f"{closed:.0f} of them for the per-address limit")
    print(f"  fresh scrapes from 127.0.0.3: {scrapes.summary()} "
          f"(target: all 200, each within 1,000 ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=1500)
    parser.add_argument("--guessers", type=int, default=8)
    parser.add_argument("--owners", type=int, default=19)
    parser.add_argument("--part", choices=("all", "flood", "rotating", "crowd"),
                        default="all")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, waitress {metadata.version('waitress')}, "
          f"bcrypt {metadata.version('bcrypt')}")
    with tempfile.TemporaryDirectory() as tmp, FakeNetatmoCloud(
            CLIENT_ID, CLIENT_SECRET, account=demo_account(frozen=True)) as cloud:
        if args.part in ("all", "flood"):
            password_flood(Path(tmp), cloud, args.seconds, args.guessers)
        if args.part in ("all", "rotating"):
            rotating_flood(Path(tmp), cloud, args.seconds, args.guessers, args.owners)
        if args.part in ("all", "crowd"):
            connection_crowd(Path(tmp), cloud, args.seconds, args.connections)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
