"""Netatmo misbehaves; the exporter keeps serving, reports it once, and recovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud, Fault
from netatmo_exporter.simulator.accounts import empty_account
from tests.robustness.conftest import CLIENT_TIMEOUT, StartExporter
from tests.support.harness import metric_value, seed_token, wait_until

DATA_FAULTS = {
    "http_500": (Fault.http_500(), "server_error"),
    "html_502": (Fault.html_502(), "server_error"),
    "malformed_json": (Fault.malformed_json(), "bad_response"),
    "truncated_body": (Fault.truncated_body(), "connection_error"),
    "connection_reset": (Fault.connection_reset(), "connection_error"),
    "timeout": (Fault.delay(CLIENT_TIMEOUT * 4), "timeout"),
}


def _failure_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "refresh_failed" in line]


@pytest.mark.parametrize("name", sorted(DATA_FAULTS))
def test_transient_data_fault_drops_up_then_recovers(
    name: str, cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    fault, reason = DATA_FAULTS[name]
    seed_token(cloud, token_path)
    token_bytes = token_path.read_bytes()
    exporter = start_exporter("--refresh-interval", "300ms")
    exporter.wait_for_metric("netatmo_up", 1.0)

    cloud.inject("getstationsdata", fault, times=None)
    exporter.wait_for_metric("netatmo_up", 0.0)
    status, body = exporter.get("/metrics", timeout=2.0)
    failures = _failure_lines(exporter.log.lines())
    cloud.clear_faults()
    exporter.wait_for_metric("netatmo_up", 1.0)

    assert status == 200
    assert metric_value(body, "netatmo_sensor_temperature_celsius", module="Salon") == 21.5
    assert failures and f"reason={reason}" in failures[0]
    assert all("Traceback" not in line for line in exporter.log.lines())
    assert token_path.read_bytes() == token_bytes
    assert exporter.app.server.socket.fileno() >= 0


# The timeout case waits past the client's timeout and then fails, so the cloud never
# rotates the token; a refresh that Netatmo completes but whose answer is lost costs the
# authorization whatever the client does (Fault.lost_response), and is not transient.
@pytest.mark.parametrize("fault", [Fault.http_500(), Fault.html_503(), Fault.connection_reset(),
                                   Fault.http_500(wait=CLIENT_TIMEOUT * 4)],
                         ids=["http_500", "html_503", "connection_reset", "timeout"])
def test_transient_token_fault_keeps_the_token_file(
    fault: Fault, cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    seed_token(cloud, token_path, refresh_only=True)
    token_bytes = token_path.read_bytes()
    cloud.inject("token", fault, times=None)
    exporter = start_exporter("--refresh-interval", "300ms")
    wait_until("failed refresh",
               lambda: any("event=refresh_failed" in line for line in exporter.log.lines()), 10.0)

    assert exporter.metric("netatmo_up") == 0.0
    assert token_path.read_bytes() == token_bytes
    assert cloud.count("refresh_grants") == 0
    cloud.clear_faults()
    exporter.wait_for_metric("netatmo_up", 1.0)
    assert cloud.count("invalid_grant") == 0


def test_empty_device_list_is_an_answer_not_an_error(
    cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    cloud.set_account(empty_account())
    seed_token(cloud, token_path)
    exporter = start_exporter("--refresh-interval", "300ms")
    exporter.wait_for_metric("netatmo_up", 1.0)

    status, body = exporter.get("/metrics")

    assert status == 200
    assert "netatmo_sensor_temperature_celsius{" not in body
    assert not _failure_lines(exporter.log.lines())


def test_revoked_refresh_token_asks_for_authorization_and_keeps_serving(
    cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    seed_token(cloud, token_path)
    exporter = start_exporter("--refresh-interval", "300ms")
    exporter.wait_for_metric("netatmo_up", 1.0)

    cloud.revoke_all()
    exporter.wait_for_metric("netatmo_up", 0.0)
    status, page = exporter.get("/")
    failures = _failure_lines(exporter.log.lines())

    assert status == 200 and "authoriz" in page.lower()
    assert exporter.get("/-/healthy")[0] == 200
    assert [line for line in failures if "event=refresh_failed" in line and
            "reason=invalid_grant" in line and "authorize again" in line]
    assert len([line for line in failures if "event=refresh_failed" in line]) == 1
    assert cloud.count("invalid_grant") == 1


def test_control_characters_from_netatmo_are_escaped_in_log_lines(
    cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    seed_token(cloud, token_path)
    message = "Internal\x1b[2J error\r\nts=2026-01-01T00:00:00Z level=info event=forged"
    cloud.inject("getstationsdata", Fault.api_error(403, 42, message), times=None)
    exporter = start_exporter("--refresh-interval", "1h")
    wait_until("failure line", lambda: _failure_lines(exporter.log.lines()), 15.0)

    text = exporter.log.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert all(line.startswith("ts=") for line in text.splitlines())
    assert "\\u001b[2J" in text and "\\r\\nts=2026-01-01T00:00:00Z" in text


def test_each_retry_of_a_data_call_is_booked_in_the_budget(
    cloud: FakeNetatmoCloud, token_path: Path, start_exporter: StartExporter
) -> None:
    seed_token(cloud, token_path)
    cloud.inject("getstationsdata", Fault.html_502(), times=2)
    exporter = start_exporter("--refresh-interval", "1h", "--scope", "read_station")
    exporter.wait_for_metric("netatmo_up", 1.0)

    booked = exporter.metric("netatmo_exporter_api_budget_calls", caller="weather",
                             window="1h")

    assert cloud.count("getstationsdata") == 3  # two passing failures, then the answer
    assert booked == 3.0
    assert exporter.metric("netatmo_api_requests_total", endpoint="getstationsdata",
                           outcome="server_error") == 2.0
    assert len(_failure_lines(exporter.log.lines())) == 0
