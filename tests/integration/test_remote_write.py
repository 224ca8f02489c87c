"""The remote write adapter against real receivers started here: Debian's Prometheus with
its receiver and an out-of-order window, Debian's VictoriaMetrics, a Prometheus without the
receiver, one without a window; and a fake receiver on 127.0.0.1 for credentials and the
answers real receivers are hard to make give. Every written sample is read back at its
time and value under the live series' labels."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from netatmo_exporter.adapters.history.remote_write import RemoteWriteReceiver
from netatmo_exporter.domain.history.plan import Series
from netatmo_exporter.domain.history.remote_write import Batch, ReceiverError
from tests.support.harness import self_signed_certificate
from tests.support.remote_write import fake_receiver
from tests.support.tsdb import (
    PrometheusServer,
    Samples,
    prometheus_receiver,
    victoria_metrics,
)

EXTRA = (("job", "netatmo"), ("instance", "box:9210"))
INDOOR = (("module", "Indoor"), ("station", "Home"), ("home", "Cottage"))
WIND = (("module", "Wind"), ("station", "Home"), ("home", ""))
ROOM = (("room", "Living"), ("home", "Cottage"))


def _series(key: str, kind: str, field: str, labels: tuple[tuple[str, str], ...]) -> Series:
    return Series(key, kind, field, labels)


TEMPERATURE = _series("m000-temperature", "temperature", "temperature", INDOOR)
CO2 = _series("m000-co2", "co2", "co2", INDOOR)
GUSTS = _series("m001-guststrength", "guststrength", "gust_strength", WIND)
SETPOINT = _series("r002-sp_temperature", "sp_temperature", "setpoint_temperature", ROOM)


def _readings(end: int, count: int, step: int, base: float) -> list[tuple[int, float]]:
    """`count` readings every `step` seconds up to `end`, oldest first."""
    return [(end - (count - 1 - i) * step, round(base + (i * 37 % 23) / 10, 1))
            for i in range(count)]


def _batch(end: int) -> Batch:
    """Two days of 5-minute readings for four families, one of them converted."""
    return [(TEMPERATURE, _readings(end, 576, 300, 19.0)),
            (CO2, _readings(end - 17, 576, 300, 400.0)),
            (GUSTS, _readings(end - 31, 576, 300, 18.0)),
            (SETPOINT, _readings(end - 60, 40, 3600, 18.5))]


def _expected(end: int) -> Samples:
    base = {"job": "netatmo", "instance": "box:9210", "station": "Home"}
    rows = {
        "netatmo_sensor_temperature_celsius": (
            {"module": "Indoor", "home": "Cottage"}, _readings(end, 576, 300, 19.0), 1.0),
        "netatmo_sensor_co2_ppm": (
            {"module": "Indoor", "home": "Cottage"}, _readings(end - 17, 576, 300, 400.0), 1.0),
        "netatmo_sensor_gust_strength_meters_per_second": (
            {"module": "Wind"}, _readings(end - 31, 576, 300, 18.0), 1 / 3.6),
    }
    expected: Samples = {}
    for name, (labels, readings, factor) in rows.items():
        key = frozenset({**base, **labels, "__name__": name}.items())
        expected[key] = [(float(t), value * factor) for t, value in readings]
    room = frozenset({"job": "netatmo", "instance": "box:9210", "room": "Living",
                      "home": "Cottage",
                      "__name__": "netatmo_room_setpoint_temperature_celsius"}.items())
    expected[room] = [(float(t), v) for t, v in _readings(end - 60, 40, 3600, 18.5)]
    return expected


def _write(url: str, batch: Batch, **options: str) -> int:
    receiver = RemoteWriteReceiver(url, EXTRA, max_samples=1000, **options)
    try:
        return receiver.write(batch)
    finally:
        receiver.close()


def test_prometheus_with_an_out_of_order_window_stores_every_reading(tmp_path: Path) -> None:
    end = int(time.time()) - 60
    with prometheus_receiver(tmp_path) as prometheus:
        # The newest first, then older ones: these are out of order, within the window.
        assert _write(prometheus.write_url, [(s, r[-10:]) for s, r in _batch(end)]) == 40
        assert _write(prometheus.write_url, _batch(end)) == 576 * 3 + 40
        assert prometheus.samples() == _expected(end)


def test_victoria_metrics_stores_every_reading(tmp_path: Path) -> None:
    end = int(time.time()) - 60
    with victoria_metrics(tmp_path) as victoria:
        assert _write(victoria.write_url, _batch(end)) == 576 * 3 + 40
        found = victoria.export()
    expected = _expected(end)
    assert found.keys() == expected.keys()
    for key, samples in expected.items():  # VictoriaMetrics keeps 12 significant digits
        assert [t for t, _ in found[key]] == [t for t, _ in samples]
        assert [v for _, v in found[key]] == pytest.approx([v for _, v in samples], rel=1e-11)


def test_prometheus_without_the_receiver_flag_is_not_enabled(tmp_path: Path) -> None:
    with prometheus_receiver(tmp_path, enabled=False) as prometheus:
        with pytest.raises(ReceiverError) as caught:
            _write(prometheus.write_url, _batch(int(time.time())))
    assert caught.value.reason == "not_enabled" and not caught.value.retry
    # Prometheus' own words vary: 2.42 names --enable-feature=remote-write-receiver, 2.53 the
    # --web.enable-remote-write-receiver flag.
    message = str(caught.value)
    assert message.startswith(f"remote write to {prometheus.write_url}: HTTP 404 (remote write "
                              "receiver needs to be enabled with --")
    assert message.endswith("): no receiver at that path; Prometheus needs "
                            "--web.enable-remote-write-receiver; VictoriaMetrics serves "
                            "/api/v1/write")


def _write_requests(prometheus: PrometheusServer) -> int:
    found = prometheus.query('sum(prometheus_http_requests_total{handler="/api/v1/write"})')
    return int(float(found[0]["value"][1])) if found else 0


@pytest.mark.parametrize("window", [None, "1h"])
def test_readings_older_than_the_window_are_told_once_and_the_rest_stored(
        tmp_path: Path, window: str | None) -> None:
    now = int(time.time())
    with prometheus_receiver(tmp_path, window=window) as prometheus:
        assert _write(prometheus.write_url, [(TEMPERATURE, [(now - 60, 20.0)])]) == 1
        old = _readings(now - 3 * 3600, 24, 300, 10.0)
        with pytest.raises(ReceiverError) as caught:
            _write(prometheus.write_url, [(TEMPERATURE, old), (CO2, _readings(now, 12, 300, 450))])
        requests = _write_requests(prometheus)
        stored = prometheus.samples()
    error = caught.value
    assert error.reason == "out_of_window" and not error.retry
    names = {dict(key)["__name__"]: samples for key, samples in stored.items()}
    assert names["netatmo_sensor_temperature_celsius"] == [(float(now - 60), 20.0)]
    co2 = names.get("netatmo_sensor_co2_ppm", [])
    assert error.accepted == len(co2)
    if window:  # refused by time alone: exactly the old readings
        assert error.accepted == 12
        assert f"refuses 24 samples from {_when(old[0][0])} to {_when(old[-1][0])}" in str(error)
    else:  # without a window each series refuses what is older than its newest sample,
        # so the readings a first probe stored make the older ones of that series refused
        assert f"refuses {36 - len(co2)} samples from {_when(old[0][0])} to" in str(error)
    assert "out_of_order_time_window in prometheus.yml" in str(error)
    assert f"backfill --from {_when(old[0][0])} --to " in str(error)
    # the first write, the refused request, then at most a halving per time
    assert requests <= 2 + 6, requests


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def test_basic_auth_and_bearer_tokens_arrive_from_their_files(tmp_path: Path) -> None:
    password, token = tmp_path / "password", tmp_path / "token"
    password.write_text("s3cret-password\n")
    token.write_text("s3cret-token\n")
    with fake_receiver() as receiver:
        _write(receiver.url, [(TEMPERATURE, [(1_733_000_000, 1.0)])], username="writer",
               password_file=str(password))
        _write(receiver.url, [(TEMPERATURE, [(1_733_000_000, 1.0)])],
               bearer_token_file=str(token))
    assert [r.headers["Authorization"] for r in receiver.received] == [
        "Basic " + base64.b64encode(b"writer:s3cret-password").decode(),
        "Bearer s3cret-token"]
    assert receiver.received[0].series == [(
        {"__name__": "netatmo_sensor_temperature_celsius", "home": "Cottage",
         "instance": "box:9210", "job": "netatmo", "module": "Indoor", "station": "Home"},
        [(1_733_000_000_000, 1.0)])]


@pytest.mark.parametrize(("answers", "reason", "sent"), [
    ([(401, {}, b"unauthorized")], "unauthorized", [2]),
    ([(429, {"Retry-After": "7"}, b"")], "rate_limited", [2]),
    ([(502, {}, b"<html>Bad Gateway</html>")], "server_error", [2]),
    ([(413, {}, b"")], None, [2, 1, 1]),
])
def test_answers_of_a_receiver_over_http(answers: Sequence[tuple[int, dict[str, str], bytes]],
                                         reason: str | None, sent: list[int]) -> None:
    batch = [(TEMPERATURE, [(1_733_000_000, 1.0), (1_733_000_300, 1.5)])]
    with fake_receiver() as receiver:
        receiver.answers = list(answers)
        if reason is None:
            assert _write(receiver.url, batch) == 2
        else:
            with pytest.raises(ReceiverError) as caught:
                _write(receiver.url, batch)
            assert caught.value.reason == reason
            assert caught.value.retry_after == (7.0 if reason == "rate_limited" else None)
    assert [sum(len(s) for _, s in r.series) for r in receiver.received] == sent


def test_tls_is_verified_and_a_ca_file_adds_a_ca(tmp_path: Path) -> None:
    key, cert = self_signed_certificate(tmp_path, "receiver.example.org")
    batch = [(TEMPERATURE, [(1_733_000_000, 1.0)])]
    with fake_receiver(tls=(key, cert)) as receiver:
        with pytest.raises(ReceiverError) as caught:
            _write(receiver.url, batch)
        assert _write(receiver.url, batch, ca_file=str(cert)) == 1
    assert caught.value.reason == "unreachable" and caught.value.retry
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert "give it with --history.remote-write-ca-file" in str(caught.value)
    assert receiver.url.startswith("https://")
    assert len(receiver.received) == 1
