"""The call budget across the service's lives: every call it books is written to
`<token file>.calls`, and a service started again counts the calls of the hour before, so
that a crash loop (systemd restarting it every 5 s) stays within Netatmo's 500 calls an
hour instead of starting each life with an empty budget."""

from __future__ import annotations

import time
from pathlib import Path

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.support.harness import (
    ExporterProcess,
    exporter_args,
    metric_value,
    seed_token,
    wait_until,
)

DATA_ENDPOINTS = ("getstationsdata", "gethomecoachsdata")


def _weather_hour(text: str) -> float | None:
    return metric_value(text, "netatmo_exporter_api_budget_calls", caller="weather",
                        window="1h")


def _data_calls(cloud: FakeNetatmoCloud) -> int:
    return sum(cloud.count(endpoint) for endpoint in DATA_ENDPOINTS)


def _life(cloud: FakeNetatmoCloud, token: Path, workdir: Path,
          exporters: list[ExporterProcess]) -> ExporterProcess:
    process = ExporterProcess(exporter_args(cloud, token), workdir)
    exporters.append(process)
    return process.start()


def test_a_service_killed_and_started_again_counts_the_calls_of_its_earlier_lives(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
        exporters: list[ExporterProcess]) -> None:
    seed_token(cloud, token_path)
    for life in range(1, 4):
        service = _life(cloud, token_path, tmp_path, exporters)
        service.metrics_when(lambda body, life=life: _weather_hour(body) == 2 * life,
                             f"{2 * life} calls counted")
        wait_until("two calls a life", lambda life=life: _data_calls(cloud) == 2 * life, 10.0)
        service.kill()  # a crash: nothing written at exit
    assert _data_calls(cloud) == 6  # two calls a life
    assert "event=call_budget_restored calls=4 callers=weather:4" in service.logs()
    journal = token_path.with_name("token.json.calls")
    assert journal.stat().st_mode & 0o777 == 0o600
    assert len(journal.read_text().splitlines()) == 6


def test_a_service_whose_earlier_lives_spent_the_hour_calls_nothing(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
        exporters: list[ExporterProcess]) -> None:
    seed_token(cloud, token_path)
    now = time.time()
    spent = [f"{now - 3500 + index * 7:.3f} weather" for index in range(500)]
    unusable = ["garbage", f"{now + 7200:.3f} weather", f"{now - 4000:.3f} weather",
                "nan weather", f"{now:.3f} Weather!", "\xff\xfe"]
    token_path.with_name("token.json.calls").write_text("\n".join([*unusable, *spent]) + "\n")

    service = _life(cloud, token_path, tmp_path, exporters)
    wait_until("the budget wait", lambda: "event=budget_wait caller=weather" in service.logs(),
               20.0, detail=service.logs)

    assert "event=call_budget_restored calls=500 callers=weather:500" in service.logs()
    assert _data_calls(cloud) == 0
    status, text = service.get("/metrics")
    assert status == 200 and _weather_hour(text) == 500
    assert "room in the hour (500 calls per hour)" in service.logs()
