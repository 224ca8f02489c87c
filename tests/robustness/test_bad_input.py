"""Whatever arrives (token files, Netatmo payloads, forms, raw bytes on the socket), the
exporter answers with a clear error, never a crash, and never loses the token it has."""

from __future__ import annotations

import json
import socket
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netatmo_exporter.adapters.netatmo.payload import parse_devices
from netatmo_exporter.adapters.system.token_file import token_from_json, token_to_json
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.errors import BadResponse
from netatmo_exporter.simulator import FakeNetatmoCloud, demo_account
from tests.robustness.conftest import LogStream, RunningExporter, StartExporter
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, seed_token

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
TOKEN_KEYS = ["access_token", "refresh_token", "expiry", "token_type", "expires_in", "scope"]
DEVICE_KEYS = ["_id", "station_name", "home_id", "home_name", "module_name", "type", "firmware",
               "reachable", "wifi_status", "last_status_store", "place", "dashboard_data",
               "modules", "battery_percent", "battery_vp", "rf_status", "last_seen", "favorite"]
DASHBOARD_KEYS = ["time_utc", "Temperature", "Humidity", "CO2", "Noise", "Pressure",
                  "AbsolutePressure", "min_temp", "max_temp", "temp_trend", "pressure_trend",
                  "Rain", "sum_rain_1", "sum_rain_24", "WindStrength", "WindAngle",
                  "GustStrength", "GustAngle", "health_idx"]


# -- the token file parser --------------------------------------------------------------

@FUZZ
@given(st.binary(max_size=300))
def test_token_parser_takes_any_bytes(raw: bytes) -> None:
    _parse_or_value_error(raw)


@FUZZ
@given(st.dictionaries(st.sampled_from(TOKEN_KEYS), JSON | st.text(string.printable)))
def test_token_parser_takes_any_json_object(document: dict[str, Any]) -> None:
    _parse_or_value_error(json.dumps(document).encode())


@FUZZ
@given(
    access=st.text(min_size=1, max_size=60), refresh=st.text(min_size=1, max_size=60),
    expiry=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 1, 1),
                        timezones=st.sampled_from([
                            UTC, timezone(timedelta(hours=1)),
                            timezone(-timedelta(hours=9, minutes=30))])) | st.none(),
    lifetime=st.none() | st.integers(1, 10**7).map(float),
    scope=st.none() | st.lists(st.text(max_size=20), max_size=3).map(tuple),
)
def test_token_file_round_trips(access: str, refresh: str, expiry: datetime | None,
                                lifetime: float | None, scope: tuple[str, ...] | None) -> None:
    token = Token(access, refresh, expiry, "Bearer", lifetime, scope)

    again = token_from_json(token_to_json(token))

    assert again == token


def _parse_or_value_error(raw: bytes) -> None:
    try:
        token = token_from_json(raw)
    except ValueError as exc:
        assert str(exc)
        return
    assert token.access_token or token.refresh_token


# -- the API payload parser -------------------------------------------------------------

def _device(module: bool) -> st.SearchStrategy[dict[str, Any]]:
    dashboard = st.dictionaries(st.sampled_from(DASHBOARD_KEYS), JSON)
    base = st.dictionaries(st.sampled_from(DEVICE_KEYS), JSON)
    extra: dict[str, Any] = {"_id": st.text(max_size=20) | JSON, "dashboard_data": dashboard}
    if not module:
        extra["modules"] = st.lists(_device(True), max_size=3) | JSON
    return st.tuples(base, st.fixed_dictionaries({}, optional=extra)).map(
        lambda parts: {**parts[0], **parts[1]})


PAYLOAD = st.one_of(JSON, st.fixed_dictionaries({"body": st.fixed_dictionaries(
    {"devices": st.lists(_device(False), max_size=3)})}))


@FUZZ
@given(PAYLOAD, st.sampled_from(["station", "homecoach"]))
def test_payload_parser_takes_any_document(payload: Any, kind: str) -> None:
    try:
        stations = parse_devices(payload, kind)  # type: ignore[arg-type]
    except BadResponse as exc:
        assert str(exc)
        return
    assert all(station.id for station in stations)


def test_payload_parser_keeps_a_real_answer_with_one_field_garbled() -> None:
    body = demo_account(frozen=True).stations_body(1_700_000_000)
    body["devices"][0]["dashboard_data"]["Temperature"] = "warm"
    body["devices"][0]["modules"][0] = "not a module"

    stations = parse_devices({"body": body}, "station")

    assert len(stations) == len(body["devices"])


# -- the web forms, query strings and raw requests, through a real socket ----------------

@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningExporter,
                                                                    FakeNetatmoCloud, Path]]:
    from netatmo_exporter.entrypoints.bootstrap import build_app
    from netatmo_exporter.entrypoints.config import load_config
    from tests.conftest import exporter_args

    token_path = tmp_path_factory.mktemp("web") / "token.json"
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=demo_account(frozen=True)) as cloud:
        seed_token(cloud, token_path)
        config = load_config(["--addr", "127.0.0.1:0", *exporter_args(cloud, token_path)], {})
        log = LogStream()
        exporter = RunningExporter(build_app(config, log_stream=log), log)
        exporter.app.start()
        try:
            yield exporter, cloud, token_path
        finally:
            exporter.stop()


def _raw(exporter: RunningExporter, request: bytes) -> bytes:
    host, port = exporter.app.server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=5.0) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


QUERY = st.lists(st.tuples(st.sampled_from(["code", "state", "error", "error_description",
                                            "done", "anyway", "x"]) | st.text(max_size=8),
                           st.text(max_size=40)), max_size=5)


@FUZZ
@given(QUERY)
def test_callback_query_strings_change_nothing(
    web: tuple[RunningExporter, FakeNetatmoCloud, Path], query: list[tuple[str, str]]
) -> None:
    exporter, cloud, token_path = web
    before = token_path.read_bytes()

    status, _ = exporter.get("/auth/callback?" + urlencode(query))

    assert 200 <= status < 500
    assert token_path.read_bytes() == before
    assert cloud.count("code_grants") == 0


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["refresh_token", "form_token"]) | st.text(max_size=8),
                          st.text(max_size=80)), max_size=4),
       st.sampled_from(["", "http://evil.example", "null"]))
def test_settoken_forms_change_nothing(
    web: tuple[RunningExporter, FakeNetatmoCloud, Path], form: list[tuple[str, str]],
    origin: str,
) -> None:
    exporter, cloud, token_path = web
    before = token_path.read_bytes()
    body = urlencode(form).encode()
    headers = (f"Origin: {origin}\r\n" if origin else "")

    answer = _raw(exporter, (f"POST /auth/settoken HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
                             "Content-Type: application/x-www-form-urlencoded\r\n"
                             f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                             ).encode() + body)

    assert 200 <= _status(answer) < 500
    assert token_path.read_bytes() == before
    assert cloud.count("refresh_grants") == 0


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode()))
def test_garbage_on_the_socket_is_refused_and_the_server_stays(
    web: tuple[RunningExporter, FakeNetatmoCloud, Path], garbage: bytes
) -> None:
    exporter, _, _ = web

    answer = _raw(exporter, garbage + b"\r\n\r\n")

    assert _status(answer) < 500
    assert exporter.get("/-/healthy")[0] == 200


# -- token files that cannot be used ----------------------------------------------------

@pytest.mark.parametrize("content", [b"{\"access_token\": \"abc\", \"refresh_", b"\x00\xff" * 64,
                                     b"[]", b"", b"{}"],
                         ids=["truncated", "binary", "not_an_object", "empty", "no_tokens"])
def test_unusable_token_file_is_kept_aside_and_reported(
    content: bytes, cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    token_path.write_bytes(content)

    exporter = start_exporter("--refresh-interval", "300ms")
    status, page = exporter.get("/")
    kept = list(token_path.parent.glob("token.json.corrupt-*"))

    assert status == 200 and "token file" in page.lower()
    assert exporter.metric("netatmo_up") == 0.0
    assert len(kept) == 1 and kept[0].read_bytes() == content
    assert [line for line in exporter.log.lines() if "token_file_corrupt" in line]
    assert exporter.get("/-/healthy")[0] == 200
