"""Remote write's bytes decoded back by the test-side decoders, and the receiver adapter's
requests and refusals over `httpx.MockTransport`."""

from __future__ import annotations

import base64
import random
import struct
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from netatmo_exporter.adapters.history.remote_write import RemoteWriteReceiver, shown_url
from netatmo_exporter.adapters.history.remote_write.wire import (
    snappy_compress,
    varint,
    write_request,
)
from netatmo_exporter.domain.history.plan import Series
from netatmo_exporter.domain.history.remote_write import RECEIVER_REASONS, ReceiverError
from tests.support.remote_write import Decoded, decode_write_request, snappy_decompress

TEMPERATURE = Series("m000-temperature", "temperature", "temperature",
                     (("module", "Outdoor"), ("station", "Home"), ("home", "")))
GUSTS = Series("m001-guststrength", "guststrength", "gust_strength",
               (("module", "Wind"), ("station", "Home"), ("home", "Cottage")))
ROOM = Series("r002-sp_temperature", "sp_temperature", "setpoint_temperature",
              (("room", "Living"), ("home", "Cottage")))
DAY = 1_733_000_000
RANDOM = random.Random(7)  # noqa: S311 - reproducible test data, no secret


def _samples(count: int, start: int = DAY, step: int = 300) -> list[tuple[int, float]]:
    return [(start + i * step, round(15 + 5 * ((i * 7) % 13) / 13, 1)) for i in range(count)]


@pytest.mark.parametrize("data", [
    b"", b"a", b"abcd" * 3, b"x" * 100_000, bytes(range(256)) * 300,
    RANDOM.randbytes(70_000),
    b"".join(RANDOM.choice([b"temperature", b"humidity", b"\x00\x01", b"abc"])
             for _ in range(30_000)),
], ids=["empty", "one", "short", "run", "cycle", "random", "words"])
def test_snappy_blocks_decode_to_the_input(data: bytes) -> None:
    assert snappy_decompress(snappy_compress(data)) == data


def test_snappy_literals_of_every_length_encoding() -> None:
    for size in (59, 60, 61, 255, 256, 257, 65_535, 65_536, 70_000):
        data = RANDOM.randbytes(size)
        assert snappy_decompress(snappy_compress(data)) == data


def test_snappy_copies_shrink_the_repetitive_sample_encoding() -> None:
    body = write_request([((("__name__", "netatmo_sensor_temperature_celsius"),
                            ("module", "Outdoor")),
                           [(t * 1000, v) for t, v in _samples(288)])])
    compressed = snappy_compress(body)
    assert snappy_decompress(compressed) == body
    assert len(compressed) < len(body) * 0.6, (len(compressed), len(body))


def test_varints_are_protobufs() -> None:
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(150) == b"\x96\x01"   # the protobuf documentation's example
    assert varint(1 << 35) == b"\x80\x80\x80\x80\x80\x01"
    assert varint(-1) == b"\xff" * 9 + b"\x01"


def test_write_request_decodes_to_its_series() -> None:
    series = [((("__name__", "a"), ("x", "ü")), [(1_733_000_000_000, 1.5), (-5, -0.0)]),
              ((("__name__", "b"),), [(0, float("inf"))])]
    assert decode_write_request(write_request(series)) == [
        ({"__name__": "a", "x": "ü"}, [(1_733_000_000_000, 1.5), (-5, -0.0)]),
        ({"__name__": "b"}, [(0, float("inf"))])]


class MockReceiver:
    """A receiver behind `httpx.MockTransport`: decodes each request, answers with
    `answer(decoded)` (default 204), keeps what it was sent."""

    def __init__(self, answer: Callable[[Decoded], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.decoded: list[Decoded] = []
        self._answer = answer or (lambda _: httpx.Response(204))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        decoded = decode_write_request(snappy_decompress(request.content))
        self.decoded.append(decoded)
        return self._answer(decoded)

    def receiver(self, url: str = "http://receiver.test:9090/api/v1/write",
                 **options: object) -> RemoteWriteReceiver:
        return RemoteWriteReceiver(url, transport=httpx.MockTransport(self),
                                   **options)  # type: ignore[arg-type]


def test_series_go_out_under_the_live_families_labels_and_conversions() -> None:
    mock = MockReceiver()
    receiver = mock.receiver(extra_labels=(("job", "netatmo"), ("instance", "box:9210")))
    written = receiver.write([(TEMPERATURE, [(DAY, 7.3), (DAY + 300, 7.4)]),
                              (GUSTS, [(DAY, 36.0)]), (ROOM, [(DAY, 19.5)])])
    assert written == 4
    assert mock.decoded == [[
        ({"__name__": "netatmo_sensor_temperature_celsius", "instance": "box:9210",
          "job": "netatmo", "module": "Outdoor", "station": "Home"},
         [(DAY * 1000, 7.3), ((DAY + 300) * 1000, 7.4)]),
        ({"__name__": "netatmo_sensor_gust_strength_meters_per_second", "home": "Cottage",
          "instance": "box:9210", "job": "netatmo", "module": "Wind", "station": "Home"},
         [(DAY * 1000, 10.0)]),
        ({"__name__": "netatmo_room_setpoint_temperature_celsius", "home": "Cottage",
          "instance": "box:9210", "job": "netatmo", "room": "Living"},
         [(DAY * 1000, 19.5)]),
    ]]
    request = mock.requests[0]
    assert request.method == "POST"
    assert request.headers["Content-Encoding"] == "snappy"
    assert request.headers["Content-Type"] == "application/x-protobuf"
    assert request.headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert request.headers["User-Agent"].startswith("netatmo-exporter/")
    assert "Authorization" not in request.headers


def test_labels_are_sorted_by_name_on_the_wire() -> None:
    mock = MockReceiver()
    mock.receiver(extra_labels=(("Zone", "z"), ("a", "b"))).write([(TEMPERATURE, [(DAY, 1)])])
    body = snappy_decompress(mock.requests[0].content)
    names = [name for labels, _ in decode_write_request(body) for name in labels]
    assert names == sorted(names) == ["Zone", "__name__", "a", "module", "station"]


def test_samples_go_out_in_time_order_whatever_order_they_come_in() -> None:
    mock = MockReceiver()
    mock.receiver().write([(TEMPERATURE, [(DAY + 600, 3.0), (DAY, 1.0), (DAY + 300, 2.0)])])
    assert mock.decoded[0][0][1] == [(DAY * 1000, 1.0), ((DAY + 300) * 1000, 2.0),
                                     ((DAY + 600) * 1000, 3.0)]


def test_big_batches_are_split_into_requests_in_time_order() -> None:
    mock = MockReceiver()
    samples = _samples(2500)
    assert mock.receiver(max_samples=1000).write(
        [(TEMPERATURE, samples), (GUSTS, [(DAY, 3.6)])]) == 2501
    sizes = [sum(len(s) for _, s in request) for request in mock.decoded]
    assert sizes == [1000, 1000, 501]
    sent = [stamp for request in mock.decoded for labels, series in request
            if labels["module"] == "Outdoor" for stamp, _ in series]
    assert sent == [t * 1000 for t, _ in samples]


def test_a_request_too_large_is_halved_until_taken() -> None:
    mock = MockReceiver(lambda decoded: httpx.Response(
        413 if sum(len(s) for _, s in decoded) > 300 else 204, text="request too large"))
    assert mock.receiver().write([(TEMPERATURE, _samples(1000)), (GUSTS, _samples(200))]) == 1200
    accepted = [d for d, r in zip(mock.decoded, mock.requests, strict=True)
                if sum(len(s) for _, s in d) <= 300]
    assert sum(len(s) for d in accepted for _, s in d) == 1200


def test_a_single_sample_too_large_is_refused() -> None:
    mock = MockReceiver(lambda _: httpx.Response(413))
    with pytest.raises(ReceiverError) as caught:
        mock.receiver().write([(TEMPERATURE, _samples(3))])
    assert caught.value.reason == "too_large" and not caught.value.retry
    assert [sum(len(s) for _, s in d) for d in mock.decoded] == [3, 1]


@pytest.mark.parametrize(("status", "body", "reason", "retry", "hint"), [
    (404, "404 page not found\n", "not_enabled", False, "--web.enable-remote-write-receiver"),
    (400, "out of order sample", "out_of_window", False, "out_of_order_time_window"),
    (400, "out of bounds", "out_of_window", False, "backfill --from"),
    (500, "too old sample\n", "out_of_window", False, "backfill --from"),
    (400, "duplicate sample for timestamp", "refused", False, "refuses the data"),
    (422, "", "refused", False, "HTTP 422"),
    (401, "Unauthorized", "unauthorized", False, "--history.remote-write-password-file"),
    (403, "", "unauthorized", False, "--history.remote-write-bearer-token-file"),
    (429, "slow down", "rate_limited", True, "retry"),
    (500, "internal", "server_error", True, "retry"),
    (503, "", "server_error", True, "retry"),
])
def test_answers_are_classified(status: int, body: str, reason: str, retry: bool,
                                hint: str) -> None:
    mock = MockReceiver(lambda _: httpx.Response(status, text=body))
    with pytest.raises(ReceiverError) as caught:
        mock.receiver().write([(TEMPERATURE, [(DAY, 1.0)])])
    error = caught.value
    assert error.reason == reason and reason in RECEIVER_REASONS
    assert error.retry is retry
    message = str(error)
    assert message.startswith("remote write to http://receiver.test:9090/api/v1/write: ")
    assert hint in message and "\n" not in message


def test_retry_after_is_honoured_in_seconds_or_as_a_date() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "120"}),
                    httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                    httpx.Response(429)])
    mock = MockReceiver(lambda _: next(answers))
    after = []
    for _ in range(3):
        with pytest.raises(ReceiverError) as caught:
            mock.receiver().write([(TEMPERATURE, [(DAY, 1.0)])])
        after.append(caught.value.retry_after)
    assert after == [120.0, 0.0, None]


def test_receiver_text_is_one_short_line() -> None:
    mock = MockReceiver(lambda _: httpx.Response(400, text="bad\x1b[31m\r\nthing " + "x" * 500))
    with pytest.raises(ReceiverError) as caught:
        mock.receiver().write([(TEMPERATURE, [(DAY, 1.0)])])
    message = str(caught.value)
    assert "\x1b" not in message and "\r" not in message and "\n" not in message
    assert "bad [31m thing xxx" in message and len(message) < 400


def test_credentials_are_read_at_each_write_and_never_shown(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("first-secret\n")
    mock = MockReceiver(lambda _: httpx.Response(401, text="wrong"))
    receiver = mock.receiver("https://user:url-secret@receiver.test/api/v1/write?key=q-secret",
                             username="writer", password_file=str(password))
    for _ in range(2):
        with pytest.raises(ReceiverError) as caught:
            receiver.write([(TEMPERATURE, [(DAY, 1.0)])])
        password.write_text("second-secret")
        text = f"{caught.value} {caught.value!r} {receiver!r}"
        assert "https://receiver.test/api/v1/write" in text
        for secret in ("first-secret", "second-secret", "url-secret", "q-secret"):
            assert secret not in text
    assert [r.headers["Authorization"] for r in mock.requests] == [
        "Basic " + base64.b64encode(f"writer:{secret}".encode()).decode()
        for secret in ("first-secret", "second-secret")]


def test_user_information_in_the_url_is_basic_auth_when_nothing_else_is_given() -> None:
    mock = MockReceiver()
    mock.receiver("http://user:pass@receiver.test/api/v1/write").write(
        [(TEMPERATURE, [(DAY, 1.0)])])
    request = mock.requests[0]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pass").decode()
    assert str(request.url) == "http://receiver.test/api/v1/write"


def test_a_bearer_token_file_is_read_at_each_write(tmp_path: Path) -> None:
    token = tmp_path / "token"
    mock = MockReceiver()
    receiver = mock.receiver(bearer_token_file=str(token))
    for value in ("token-1", "token-2"):
        token.write_text(value + "\n")
        receiver.write([(TEMPERATURE, [(DAY, 1.0)])])
    assert [r.headers["Authorization"] for r in mock.requests] == [
        "Bearer token-1", "Bearer token-2"]
    token.unlink()
    with pytest.raises(ReceiverError) as caught:
        receiver.write([(TEMPERATURE, [(DAY, 1.0)])])
    assert caught.value.reason == "unauthorized"
    assert f"cannot read the credentials file {token}" in str(caught.value)


def test_readings_outside_the_window_are_told_and_the_rest_stored() -> None:
    """As Prometheus 2.42: a request holding one sample too old is refused whole."""
    cutoff = (DAY + 3000) * 1000
    stored: set[tuple[str, int]] = set()

    def answer(decoded: Decoded) -> httpx.Response:
        if any(t < cutoff for _, samples in decoded for t, _ in samples):
            return httpx.Response(500, text="too old sample\n")
        stored.update((labels["__name__"], t) for labels, s in decoded for t, _ in s)
        return httpx.Response(204)

    mock = MockReceiver(answer)
    with pytest.raises(ReceiverError) as caught:
        mock.receiver().write([(TEMPERATURE, [(DAY, 1.0)]),
                               (TEMPERATURE, _samples(100, DAY)), (GUSTS, _samples(30, DAY))])
    error = caught.value
    assert error.reason == "out_of_window" and not error.retry
    # 10 + 10 + 1 readings before the cutoff, 90 + 20 after it
    assert error.accepted == 110 == len(stored)
    assert "refuses 21 samples from 2024-11-30T20:53:20Z to 2024-11-30T21:38:20Z" in str(error)
    assert "`netatmo-exporter backfill --from 2024-11-30T20:53:20Z --to " \
           "2024-11-30T21:38:20Z` as blocks" in str(error)
    assert len(mock.requests) <= 10


def test_accepted_counts_the_requests_taken_before_a_failure() -> None:
    answers = iter([httpx.Response(204), httpx.Response(503)])
    mock = MockReceiver(lambda _: next(answers))
    with pytest.raises(ReceiverError) as caught:
        mock.receiver(max_samples=10).write([(TEMPERATURE, _samples(15))])
    assert caught.value.accepted == 10 and caught.value.retry


def test_shown_url_drops_user_information_and_query() -> None:
    assert shown_url("https://u:p@[::1]:9090/api/v1/write?token=x#f") == (
        "https://[::1]:9090/api/v1/write")
    assert shown_url("http://victoria:8428/api/v1/write") == "http://victoria:8428/api/v1/write"


def test_unreachable_receivers_are_retried() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    receiver = RemoteWriteReceiver("http://receiver.test/api/v1/write",
                                   transport=httpx.MockTransport(refuse))
    with pytest.raises(ReceiverError) as caught:
        receiver.write([(TEMPERATURE, [(DAY, 1.0)])])
    assert caught.value.reason == "unreachable" and caught.value.retry
    assert "Connection refused" in str(caught.value)


def test_doubles_keep_every_bit() -> None:
    mock = MockReceiver()
    value = struct.unpack("<d", struct.pack("<d", 0.1 + 0.2))[0]
    mock.receiver().write([(TEMPERATURE, [(DAY, value)])])
    assert mock.decoded[0][0][1] == [(DAY * 1000, value)]
