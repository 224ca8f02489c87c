"""A hostile API server (the simulator's raw, huge and dripping answers on 127.0.0.1) sends
each answer the red team sent: the running service counts one failed call per answer, says
it in one line, shows netatmo_up 0 until good data comes back and then 1, its pages stay
200 and its poller alive; the backfill ends with one clear line, exit 1, no traceback, in
bounded memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud, Fault
from tests.integration.test_backfill import backfill_args, run
from tests.robustness.conftest import StartExporter
from tests.support.harness import seed_token

DEVICE = b'{"_id": "70:ee:50:00:00:01", "type": "NAMain", "module_name": "Salon", '
HOSTILE = {
    "nested_1000_deep": (Fault.raw_answer(b'{"body": {"devices": ' + b"[" * 1000
                                          + b"]" * 1000 + b"}}"), "nests too deep"),
    "integer_of_400_digits": (Fault.raw_answer(
        b'{"body": {"devices": [' + DEVICE + b'"last_status_store": ' + b"7" * 400
        + b"}]}}"), "integer of 400 digits"),
    "nan_reading": (Fault.raw_answer(
        b'{"body": {"devices": [' + DEVICE + b'"dashboard_data": {"Temperature": NaN}}]}}'),
        "holds NaN"),
    "huge_answer": (Fault.huge_answer(64 * 1024 * 1024), "larger than 16 MB"),
    "drip": (Fault.drip(0.2), "took longer than 2 s"),  # each byte within the read timeout
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_answer_costs_the_service_one_refresh(
        name: str, cloud: FakeNetatmoCloud, token_path: Path,
        start_exporter: StartExporter) -> None:
    fault, words = HOSTILE[name]
    seed_token(cloud, token_path)
    exporter = start_exporter("--refresh-interval", "1h", "--scope", "read_station",
                              deadline=2.0)
    exporter.wait_for_metric("netatmo_up", 1.0)
    cloud.inject("getstationsdata", fault)

    exporter.app.refresher.loop.wake()
    exporter.wait_for_metric("netatmo_up", 0.0, timeout=30.0)
    pages = [exporter.get(path, timeout=5.0)[0] for path in ("/metrics", "/")]
    failures = [line for line in exporter.log.lines() if "event=refresh_failed" in line]
    exporter.app.refresher.loop.wake()
    exporter.wait_for_metric("netatmo_up", 1.0)

    assert pages == [200, 200]
    assert len(failures) == 1 and words in failures[0], failures
    assert cloud.count("getstationsdata") == 3  # good, hostile (not retried), good again
    assert exporter.app.refresher.state().error_counts == {
        "too_large" if name == "huge_answer" else "too_slow" if name == "drip"
        else "bad_response": 1}
    assert not [line for line in exporter.log.lines() if "Traceback" in line]


def test_half_a_utf16_pair_in_a_module_name_is_replaced_and_said(
        cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter) -> None:
    seed_token(cloud, token_path)
    cloud.inject("getstationsdata", Fault.raw_answer(
        b'{"body": {"devices": [' + DEVICE.replace(b"Salon", b"Salon \\ud800")
        + b'"dashboard_data": {"time_utc": 1700000000, "Temperature": 19.5}}]}}'), times=None)
    exporter = start_exporter("--refresh-interval", "1h", "--scope", "read_station")
    exporter.wait_for_metric("netatmo_up", 1.0)

    status, metrics = exporter.get("/metrics")
    page_status, _ = exporter.get("/")

    assert (status, page_status) == (200, 200)
    assert 'module="Salon \ufffd"' in metrics
    said = [line for line in exporter.log.lines() if "netatmo_answer_text_replaced" in line]
    assert said and "endpoint=getstationsdata" in said[0]


BACKFILL_HOSTILE = {
    "nested_1000_deep": ("getstationsdata", HOSTILE["nested_1000_deep"][0], "nests too deep"),
    "integer_of_400_digits": ("getstationsdata", HOSTILE["integer_of_400_digits"][0],
                              "integer of 400 digits"),
    "step_time_nan": ("getmeasure", Fault.raw_answer(
        b'{"body": [{"beg_time": 1700000000, "step_time": NaN, "value": [[1]]}]}'),
        "holds NaN"),
    "time_superscript_two": ("getmeasure", Fault.raw_answer(
        '{"body": [{"beg_time": "²", "value": [[1]]}]}'.encode()), "reading time '\\xb2'"),
    "huge_answer": ("getstationsdata", Fault.huge_answer(200 * 1024 * 1024),
                    "larger than 16 MB"),
}


@pytest.mark.parametrize("name", sorted(BACKFILL_HOSTILE))
def test_a_hostile_answer_ends_the_backfill_in_one_line(
        name: str, cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    endpoint, fault, words = BACKFILL_HOSTILE[name]
    seed_token(cloud, token_path)
    cloud.inject(endpoint, fault, times=None)
    args = backfill_args(cloud, token_path, tmp_path / "history.om", 1,
                         "--scope", "read_station")

    result = run(["/usr/bin/time", "-f", "maxrss_kb=%M", *args])

    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    failure = [line for line in lines if line.startswith("netatmo-exporter backfill: ")]
    assert len(failure) == 1 and f"Netatmo {endpoint}" in failure[0], lines
    assert words in failure[0], failure
    max_rss_mb = int(lines[-1].removeprefix("maxrss_kb=")) / 1024
    print(f"{name}: backfill peak RSS {max_rss_mb:.0f} MB")
    assert max_rss_mb < 150  # a 200 MB answer took it to 455 MB before the cap


def test_a_dripping_answer_ends_the_backfill_at_its_deadline(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    cloud.inject("getstationsdata", Fault.drip(1.0), times=None)
    args = backfill_args(cloud, token_path, tmp_path / "history.om", 1,
                         "--scope", "read_station")

    result = run(args)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "took longer than 30 s in all" in result.stderr.strip().splitlines()[-1]


def test_half_a_utf16_pair_in_a_name_is_replaced_in_the_backfill_and_said(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    cloud.inject("getstationsdata", Fault.raw_answer(
        b'{"body": {"devices": [' + DEVICE.replace(b"Salon", b"Salon \\udc00")
        + b'"station_name": "Maison", "last_status_store": 1700000000}]}}'))
    output = tmp_path / "history.om"

    result = run(backfill_args(cloud, token_path, output, 1, "--scope", "read_station"))

    assert result.returncode == 0, result.stderr
    assert "event=netatmo_answer_text_replaced endpoint=getstationsdata" in result.stderr
    assert 'module="Salon \ufffd"' in output.read_text(encoding="utf-8")


def test_numbers_at_the_edge_of_the_range_keep_every_page_200(
        cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter) -> None:
    seed_token(cloud, token_path)
    cloud.inject("getstationsdata", Fault.raw_answer(
        b'{"body": {"devices": [' + DEVICE + b'"last_status_store": -99999999999, '
        b'"wifi_status": 1e11, "firmware": -1e11, "reachable": true, "dashboard_data": '
        b'{"time_utc": -99999999999, "Temperature": -1e11, "date_max_temp": 1e11, '
        b'"temp_trend": "up"}, "modules": [{"_id": "02:00:00:00:00:01", "type": "NAModule1", '
        b'"last_seen": 99999999999, "battery_vp": -1e11, "rf_status": 1e11, '
        b'"dashboard_data": {"time_utc": 99999999999, "Humidity": 1e11}}]}]}}'), times=None)
    exporter = start_exporter("--refresh-interval", "1h", "--scope", "read_station",
                              "--debug-handlers")

    exporter.wait_for_metric("netatmo_up", 1.0)

    assert [exporter.get(path)[0] for path in ("/metrics", "/", "/debug/data")] == [200] * 3
