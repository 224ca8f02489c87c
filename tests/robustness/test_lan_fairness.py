"""One LAN address attacks, another scrapes (127.0.0.2 and 127.0.0.3, bound as source
addresses): password guesses and held connections cost the attacker its own share only.

The attacks here last ATTACK_SECONDS; bench/lan_edge.py runs the same drivers for the full
minute and prints the figures.
"""

from __future__ import annotations

import base64
import resource
import time
from pathlib import Path

import bcrypt
import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import ExporterProcess, http_get, metric_value, seed_token
from tests.support.lan_attack import (
    PasswordFlood,
    Scrapes,
    crowd_while_scraping,
    raise_file_limit,
    scrape_from,
)

ATTACK_SECONDS = 15.0
USER, PASSWORD = "prometheus", "scrape-pass"
OWNER, OWNER_PASSWORD = "owner", "owner-pass"
BROWSER = "127.0.0.4"


@pytest.fixture
def guarded_exporter(cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
                     exporters: list[ExporterProcess]) -> ExporterProcess:
    """An exporter process behind basic auth, with bcrypt's usual cost (10)."""
    seed_token(cloud, token_path)
    users = "".join(
        f"  {user}: {bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()}\n"
        for user, password in ((USER, PASSWORD), (OWNER, OWNER_PASSWORD)))
    web_config = tmp_path / "web.yml"
    web_config.write_text("basic_auth_users:\n" + users)
    exporter = ExporterProcess(
        exporter_args(cloud, token_path, "--refresh-interval", "1h",
                      "--web.config.file", str(web_config)), tmp_path)
    exporters.append(exporter)
    return exporter.start()


def _refusals(exporter: ExporterProcess, auth_header: dict[str, str]) -> dict[str, float]:
    status, body = http_get(exporter.url + "/metrics", timeout=10.0, headers=auth_header)
    assert status == 200
    reasons = ("password_wrong", "password_busy", "connection_per_address")
    return {reason: metric_value(body, "netatmo_exporter_http_refusals_total",
                                 reason=reason) or 0.0 for reason in reasons}


def test_password_guesses_from_one_address_leave_another_address_its_turn(
    guarded_exporter: ExporterProcess
) -> None:
    port = guarded_exporter.port
    flood = PasswordFlood(port, USER, connections=8).start()
    try:
        time.sleep(2.0)  # the flood at full speed before anyone else comes
        prometheus_first = scrape_from("127.0.0.3", port, (USER, PASSWORD))
        scrapes = Scrapes().run(port, ATTACK_SECONDS / 2, 0.25, auth=(USER, PASSWORD))
        owner_first = scrape_from(BROWSER, port, (OWNER, OWNER_PASSWORD))
        scrapes.run(port, ATTACK_SECONDS / 2, 0.25, auth=(USER, PASSWORD))
    finally:
        flood.stop()
    time.sleep(1.1)  # /metrics answers from a cache for up to a second
    header = {"Authorization": "Basic " + base64.b64encode(
        f"{USER}:{PASSWORD}".encode()).decode()}
    refusals = _refusals(guarded_exporter, header)
    logs = guarded_exporter.logs()
    log_lines = sum(1 for line in logs.splitlines()
                    if "event=basic_auth_refused" in line or "event=basic_auth_busy" in line)

    print(f"\n8 connections from 127.0.0.2 guessing for {ATTACK_SECONDS:.0f} s: "
          f"{dict(flood.statuses)}; first uncached check from 127.0.0.3: "
          f"{prometheus_first[0]} in {prometheus_first[1] * 1000:.0f} ms, from {BROWSER}: "
          f"{owner_first[0]} in {owner_first[1] * 1000:.0f} ms; {scrapes.summary()}; "
          f"refusals counted {refusals}; {log_lines} log lines about them")
    assert prometheus_first[0] == 200 and prometheus_first[1] < 2.0
    assert owner_first[0] == 200 and owner_first[1] < 2.0
    assert scrapes.share_ok >= 0.95
    assert set(flood.statuses) <= {401, 429} and flood.statuses[401] > 0
    assert refusals["password_wrong"] >= flood.statuses[401]
    assert refusals["password_busy"] >= flood.statuses[429]
    # One line per address, user and reason per 10 s window, whatever the flood's rate.
    assert 1 <= log_lines <= 2 * (ATTACK_SECONDS / 10 + 2)
    assert "guess-" not in logs and PASSWORD not in logs


def test_connections_held_by_one_address_leave_fresh_scrapes_from_another_answering(
    exporter_process: ExporterProcess
) -> None:
    previous = raise_file_limit()
    try:
        crowd, scrapes = crowd_while_scraping(exporter_process.port, held=1500,
                                              seconds=ATTACK_SECONDS, every=1.0)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, previous)
    status, body = exporter_process.get("/metrics")
    closed = metric_value(body, "netatmo_exporter_http_refusals_total",
                          reason="connection_per_address")

    print(f"\n1,500 connections held from 127.0.0.2 for {ATTACK_SECONDS:.0f} s "
          f"({crowd.reconnects} closed by the server and reopened, {closed:.0f} for the "
          f"per-address limit): fresh scrapes from 127.0.0.3: {scrapes.summary()}")
    assert status == 200
    assert len(scrapes.results) >= ATTACK_SECONDS / 2
    assert scrapes.ok == len(scrapes.results) and scrapes.slowest < 1.0
    assert closed is not None and closed > 0
