"""`netatmo-exporter backfill` as a user runs it, against the simulated cloud's history:
the token file alone, beside a running exporter whose tokens expire, stopped and resumed."""

from __future__ import annotations

import calendar
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud
from netatmo_exporter.simulator.faults import Fault
from tests.conftest import exporter_args
from tests.support.harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    REPO,
    ExporterProcess,
    metric_value,
    seed_token,
    wait_until,
)

HOUR = 3600
SALON = "70:ee:50:00:00:01"
SAMPLE = re.compile(r'^(\w+)\{(.*)\} (\S+) (\d+)$')


def _range(days: int) -> tuple[str, str]:
    """Absolute bounds, so that separate runs ask for the very same readings."""
    end = (int(time.time()) - 4 * HOUR) // HOUR * HOUR
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (time.strftime(fmt, time.gmtime(end - days * 86400)),
            time.strftime(fmt, time.gmtime(end)))


def backfill_args(cloud: FakeNetatmoCloud, token_path: Path, output: Path, days: int = 10,
                  *extra: str) -> list[str]:
    start, stop = _range(days)
    return [sys.executable, "-m", "netatmo_exporter", "backfill", "--api-url", cloud.base_url,
            "--token-file", str(token_path), "--client-id", CLIENT_ID, "--client-secret",
            CLIENT_SECRET, "--control-socket", str(output.parent / "absent.sock"),
            "--from", start, "--to", stop, "--output", str(output), *extra]


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def samples(path: Path) -> list[tuple[str, str, str, int]]:
    found = []
    for line in path.read_text().splitlines():
        match = SAMPLE.match(line)
        if match:
            found.append((match[1], match[2], match[3], int(match[4])))
    return found


def test_a_backfill_from_the_token_file_writes_every_stored_reading(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    output = tmp_path / "history.om"
    result = run(backfill_args(cloud, token_path, output, 3))

    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert text.endswith("# EOF\n")
    rows = samples(output)
    start, stop = (int(calendar.timegm(time.strptime(when, "%Y-%m-%dT%H:%M:%SZ")))
                   for when in _range(3))
    salon = [(stamp, float(value)) for name, labels, value, stamp in rows
             if name == "netatmo_sensor_co2_ppm" and labels.startswith('module="Salon"')]
    assert salon == [(t, float(v)) for t, v in _stored(cloud, SALON, "co2", start, stop)]
    series: dict[tuple[str, str], list[int]] = {}
    for name, labels, _, stamp in rows:
        series.setdefault((name, labels), []).append(stamp)
    assert all(stamps == sorted(set(stamps)) for stamps in series.values())
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names))  # each family in one block
    assert "Salle de jeux" in text and "netatmo_sensor_health_index" in names
    assert "netatmo_sensor_gust_strength_meters_per_second" in names
    assert cloud.count("invalid_grant") == 0
    assert "Traceback" not in result.stderr
    summary = result.stderr.strip().splitlines()
    assert any(line.startswith("done: ") and f"{len(rows)} samples" in line for line in summary)
    assert (f"next: promtool tsdb create-blocks-from openmetrics --max-block-duration=744h "
            f"{output} {tmp_path / 'history-blocks'}") in summary
    assert not (tmp_path / "history.om.partial").exists()


def _stored(cloud: FakeNetatmoCloud, device_id: str, kind: str, begin: int, end: int
            ) -> list[tuple[int, float]]:
    """One type of a device as the cloud serves it unoptimized, paged by hand."""
    token = cloud.issue_tokens()["access_token"]
    found: list[tuple[int, float]] = []
    while True:
        query = urllib.parse.urlencode({"device_id": device_id, "scale": "max", "type": kind,
                                        "date_begin": begin, "date_end": end,
                                        "optimize": "false", "limit": 1024})
        request = urllib.request.Request(f"{cloud.base_url}/api/getmeasure?{query}",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.load(answer)["body"]
        times = sorted(int(key) for key in body)
        found += [(t, body[str(t)][0]) for t in times if body[str(t)][0] is not None]
        if len(times) < 1024:
            return found
        begin = times[-1] + 1


def test_the_prometheus_format_has_millisecond_timestamps(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    output = tmp_path / "history.prom"
    result = run(backfill_args(cloud, token_path, output, 1, "--format", "prometheus",
                               "--label", "job=netatmo", "--label", "instance=box:9210"))

    assert result.returncode == 0, result.stderr
    rows = samples(output)
    assert rows and all(stamp % 1000 == 0 and stamp > 10**12 for *_, stamp in rows)
    assert all(labels.endswith('job="netatmo",instance="box:9210"') for _, labels, _, _ in rows)
    assert "# EOF" not in output.read_text()
    assert "/api/v1/import/prometheus" in result.stderr


def test_beside_a_running_exporter_tokens_come_from_it_and_it_stays_authorized(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
        exporters: list[ExporterProcess]) -> None:
    cloud.set_token_lifetime(4.0)
    scopes = ("read_station", "read_homecoach", "read_thermostat")
    seed_token(cloud, token_path, scope=scopes)
    socket_path = tmp_path / "control.sock"
    exporter = ExporterProcess(exporter_args(cloud, token_path, "--control-socket",
                                             str(socket_path), "--refresh-mode", "fixed",
                                             "--refresh-interval", "2s", "--age-stale", "1h",
                                             "--scope", " ".join(scopes)),
                               tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)
    output = tmp_path / "history.om"
    args = backfill_args(cloud, token_path, output, 10, "--scope", " ".join(scopes))
    args[args.index("--control-socket") + 1] = str(socket_path)
    refreshes_before = cloud.count("refresh_grants")
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    up_while_running = []
    try:
        while proc.poll() is None and time.monotonic() - started < 120:
            up_while_running.append(metric_value(exporter.get("/metrics")[1], "netatmo_up"))
            time.sleep(0.5)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    result = subprocess.CompletedProcess(args, proc.returncode, "", stderr)

    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert len(up_while_running) >= 10 and set(up_while_running) == {1.0}
    assert f"through the running exporter ({socket_path})" in result.stderr
    assert cloud.count("refresh_grants") - refreshes_before >= max(2, int(took / 4) - 1)
    assert cloud.count("invalid_grant") == 0
    body = exporter.get("/metrics")[1]
    assert metric_value(body, "netatmo_up") == 1.0
    assert metric_value(body, "netatmo_exporter_token_valid") == 1.0
    # Every module's labels, fresh or not (a stale one exports no temperature now).
    live = {labels for name, labels in _live_series(body, ("module", "station", "home"))
            if name == "netatmo_module_info"}
    backfilled = {_sorted_labels(labels) for name, labels, _, _ in samples(output)
                  if name == "netatmo_sensor_temperature_celsius"}
    assert len(backfilled) == 12 and backfilled <= live
    rooms = {labels for name, labels in _live_series(body, ("room", "home"))
             if name == "netatmo_room_info"}
    backfilled_rooms = {_sorted_labels(labels, ("room", "home"))
                        for name, labels, _, _ in samples(output)
                        if name.startswith("netatmo_room_")}
    assert backfilled_rooms and backfilled_rooms <= rooms
    assert cloud.count("getroommeasure_ok") > 0
    logs = exporter.logs()
    assert not any(secret in logs or secret in result.stderr
                   for secret in cloud.issued_secrets())


def _sorted_labels(text: str, keep: tuple[str, ...] = ("module", "station", "home")) -> str:
    pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text)
    return ",".join(f'{k}="{v}"' for k, v in sorted(pairs) if v and k in keep)


def _live_series(body: str, keep: tuple[str, ...]) -> list[tuple[str, str]]:
    found = []
    for line in body.splitlines():
        match = re.match(r"^(\w+)\{(.*)\} \S+$", line)
        if match:
            found.append((match[1], _sorted_labels(match[2], keep)))
    return found


def _wait_for_calls(work: Path, calls: int,
                    proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    def reached() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the backfill ended (status {proc.returncode}) before "
                                 f"{calls} calls")
        return bool(json.loads((work / "checkpoint.json").read_text())["calls"] >= calls)
    wait_until(f"backfill at {calls} calls", reached, 60.0,
               ignoring=(OSError, ValueError, KeyError))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_stopped_half_way_the_same_command_finishes_with_the_same_file(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, signum: int) -> None:
    seed_token(cloud, token_path)
    whole = tmp_path / "whole" / "history.om"
    whole.parent.mkdir()
    assert run(backfill_args(cloud, token_path, whole)).returncode == 0
    full_calls = cloud.count("getmeasure")

    cloud.reset_counters()
    output = tmp_path / "history.om"
    args = backfill_args(cloud, token_path, output)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait_for_calls(tmp_path / "history.om.partial", full_calls // 2, proc)
        os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == (-signum if signum == signal.SIGKILL else 128 + signum)
    if signum != signal.SIGKILL:  # Ctrl-C and SIGTERM stop after the page in flight
        assert b"run the same command again to continue" in stderr
    assert not output.exists()
    first_calls = cloud.count("getmeasure")

    cloud.reset_counters()
    result = run(args)

    assert result.returncode == 0, result.stderr
    assert "continuing the backfill" in result.stderr
    assert output.read_bytes() == whole.read_bytes()
    assert cloud.count("getmeasure") < full_calls
    assert first_calls + cloud.count("getmeasure") <= full_calls + 1
    assert cloud.count("getstationsdata") == 0  # the plan came from the checkpoint


def _one_line_failure(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("netatmo-exporter backfill: ")
    assert all(text in lines[-1] for text in expected), lines


@pytest.mark.parametrize(("change", "expected"), [
    (("--from", "2025-02-01", "--to", "2025-01-01"), ("--from 2025-02-01T00:00:00Z is after",)),
    (("--from", "yesterday"), ("--from: 'yesterday' is neither an RFC 3339",)),
    (("--to", "1 week"), ("--to: '1 week' is neither",)),
    (("--from", "1h", "--to", ""), ("within the last 3 hours", "--format prometheus")),
    (("--label", "module=x"), ("--label module",)),
    (("--hourly-calls", "900"), ("--hourly-calls 900: give 1 to 400",)),
    (("--hourly-calls", "500"), ("--hourly-calls 500: give 1 to 400", "keeps at least 100")),
])
def test_bad_input_is_one_line_and_writes_nothing(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, change: tuple[str, ...],
        expected: tuple[str, ...]) -> None:
    seed_token(cloud, token_path)
    output = tmp_path / "history.om"
    args = backfill_args(cloud, token_path, output, 1)
    for flag, value in zip(change[::2], change[1::2], strict=True):
        if flag in args and not value:  # back to the default
            del args[args.index(flag):args.index(flag) + 2]
        elif flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    result = run(args)

    _one_line_failure(result, *expected)
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [token_path]
    assert cloud.count("requests") == 0


def test_no_authorization_yet_says_how_to_get_one(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    result = run(backfill_args(cloud, token_path, tmp_path / "history.om", 1))
    _one_line_failure(result, "not authorized yet", "netatmo-exporter login")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["missing/history.om", "."])
def test_an_output_that_cannot_be_written_is_refused_before_any_call(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, where: str) -> None:
    seed_token(cloud, token_path)
    result = run(backfill_args(cloud, token_path, tmp_path / where, 1))
    _one_line_failure(result, "--output")
    assert cloud.count("requests") == 0


def test_an_output_that_apt_purge_would_delete_is_refused(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    result = run(backfill_args(cloud, token_path, Path("/var/lib/netatmo-exporter/h.om"), 1))
    _one_line_failure(result, "/var/lib/netatmo-exporter is the Debian package's state",
                      "apt purge", "/var/tmp/netatmo-history/")
    assert cloud.count("requests") == 0


def test_a_scope_netatmo_refuses_for_a_device_stops_with_its_name(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    output = tmp_path / "history.om"
    args = backfill_args(cloud, token_path, output, 30)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait_for_calls(tmp_path / "history.om.partial", 1, proc)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    seed_token(cloud, token_path, scope=("read_station",))  # authorized again, fewer scopes

    result = run(args)

    _one_line_failure(result, "Netatmo refuses the history of", "read_homecoach",
                      "the same command continues it")
    assert not output.exists()


def test_a_module_netatmo_no_longer_knows_is_named_and_the_rest_written(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    cloud.inject("getmeasure", Fault.api_error(403, 9, "Device not found"))
    output = tmp_path / "history.om"
    result = run(backfill_args(cloud, token_path, output, 1))

    assert result.returncode == 0, result.stderr
    assert "skipped Salon (Maison (Lyon)): " in result.stderr
    assert "without Salon (Maison (Lyon)): Netatmo refused its history" in result.stderr
    modules = {labels.split(",")[0] for _, labels, _, _ in samples(output)}
    assert 'module="Salon"' not in modules and 'module="Atelier"' in modules


def test_a_service_whose_socket_the_backfill_misses_keeps_its_authorization(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
        exporters: list[ExporterProcess]) -> None:
    # A wrong --control-socket: both processes renew from the one token file. Netatmo
    # rotates the refresh token at each renewal, so a second renewal from the same one
    # would kill the authorization; the lock beside the token file makes the later
    # process adopt the earlier one's token instead.
    cloud.set_token_lifetime(2.0)
    cloud.inject("token", Fault.delay(1.0), times=None)  # a renewal as slow as a real one
    seed_token(cloud, token_path)
    exporter = ExporterProcess(exporter_args(cloud, token_path, "--control-socket",
                                             str(tmp_path / "control.sock"),
                                             "--refresh-mode", "fixed",
                                             "--refresh-interval", "1s", "--age-stale", "1h"),
                               tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)
    output = tmp_path / "history.om"
    started = time.monotonic()

    result = run(backfill_args(cloud, token_path, output, 10))

    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "token file" in result.stderr.splitlines()[0]
    assert cloud.count("refresh_grants") >= max(2, int(took / 3.5) - 1)
    assert cloud.count("invalid_grant") == 0
    assert output.read_text().endswith("# EOF\n")
    # A renewal in flight outlasts this access token: settle the renewals before asking.
    cloud.clear_faults()
    cloud.set_token_lifetime(3600.0)
    body = exporter.metrics_when(
        lambda text: metric_value(text, "netatmo_exporter_token_valid") == 1.0,
        "valid token", 15.0)
    assert metric_value(body, "netatmo_exporter_authorization_state", state="ok") == 1.0
    assert metric_value(body, "netatmo_up") == 1.0
    assert cloud.count("invalid_grant") == 0


def test_beside_a_running_service_the_backfill_spends_the_services_budget(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
        exporters: list[ExporterProcess]) -> None:
    seed_token(cloud, token_path)
    socket_path = tmp_path / "control.sock"
    exporter = ExporterProcess(exporter_args(cloud, token_path, "--control-socket",
                                             str(socket_path), "--refresh-mode", "fixed",
                                             "--refresh-interval", "1s", "--age-stale", "1h"),
                               tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)
    args = backfill_args(cloud, token_path, tmp_path / "history.om", 10, "--hourly-calls", "20")
    args[args.index("--control-socket") + 1] = str(socket_path)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    seen: list[dict[tuple[str, str], float]] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            body = exporter.get("/metrics")[1]
            seen.append({(caller, window): metric_value(body, "netatmo_exporter_api_budget_calls",
                                                        caller=caller, window=window) or 0.0
                         for caller in ("backfill", "weather", "energy")
                         for window in ("10s", "1h")})
            if seen[-1][("backfill", "1h")] >= 20 and len(seen) >= 10:
                break  # its share is spent: it waits for the hour now
            time.sleep(0.2)
        time.sleep(2.0)  # a call past the share would show by now
        body = exporter.get("/metrics")[1]
        backfill_hour = metric_value(body, "netatmo_exporter_api_budget_calls",
                                     caller="backfill", window="1h")
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    assert "whose budget counts the backfill's calls" in stderr, stderr
    assert "for the backfill's share of the hour (20 calls per hour)" in stderr
    assert backfill_hour == 20.0
    # The backfill's calls the cloud saw are the ones the service's budget counted.
    assert cloud.count("getmeasure") + 2 == backfill_hour  # + stations, homecoaches
    for sample in seen:
        assert sample[("backfill", "1h")] <= 20
        assert sum(v for (_, window), v in sample.items() if window == "1h") <= 500
        assert sum(v for (_, window), v in sample.items() if window == "10s") <= 50
    assert max(sample[("weather", "1h")] for sample in seen) > 0
    assert cloud.count("rate_limited") == 0
    assert metric_value(exporter.get("/metrics")[1], "netatmo_up") == 1.0


def _on_a_terminal(args: list[str], columns: int, timeout: float = 120) -> tuple[int, str]:
    """Runs `args` with stderr on a pseudo-terminal `columns` wide; its exit status and what
    it wrote there."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, env={**env, "PYTHONPATH": str(REPO)})
    os.close(slave)
    written = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            try:
                chunk = os.read(master, 65536) if ready else b""
            except OSError:  # EIO: the child closed the terminal
                break
            if ready and not chunk:
                break
            written += chunk
        return proc.wait(10), written.decode()
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_on_an_80_column_terminal_the_bar_fits_and_keeps_its_eta(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    status, written = _on_a_terminal(
        backfill_args(cloud, token_path, tmp_path / "history.om", 10), 80)

    assert status == 0, written
    bars = [part.split("\r\n")[0] for part in written.split("\r\x1b[2K")
            if part.startswith("[")]
    assert len(bars) > 10, written
    assert all(len(bar) < 80 for bar in bars), [bar for bar in bars if len(bar) >= 80]
    with_eta = [bar for bar in bars if " ETA " in bar]
    assert len(with_eta) > 10 and all(re.search(r" ETA \w+$", bar) for bar in with_eta)
    assert any(" at 20" in bar for bar in with_eta)  # a title and date had room
