"""Upload-aligned polling and the payload findings, in-process over real HTTP against the
simulated cloud: which calls go out, what the status page and /metrics say."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.entrypoints.bootstrap import Application, build_app
from netatmo_exporter.entrypoints.config import load_config
from netatmo_exporter.simulator import (
    Cadence,
    FakeNetatmoCloud,
    Fault,
    ScaledClock,
    demo_account,
    quirks_account,
)
from netatmo_exporter.simulator.accounts import Account
from tests.conftest import exporter_args
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, http_get, seed_token, wait_until

PERIOD = 30.0
SCALE = 10.0  # an upload every 3 s of real time
STATIONS = ("70:ee:50:00:00:01", "70:ee:50:00:00:02", "70:ee:50:00:00:03")


@contextmanager
def running(tmp_path: Path, account: Account, *flags: str
            ) -> Iterator[tuple[Application, FakeNetatmoCloud]]:
    """An exporter and a cloud sharing a clock SCALE times faster than the wall clock."""
    clock = ScaledClock(SCALE)
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=account, clock=clock.now
                          ) as cloud, exporter(tmp_path, cloud, clock, *flags) as app:
        yield app, cloud


@contextmanager
def exporter(tmp_path: Path, cloud: FakeNetatmoCloud, clock: ScaledClock | None = None,
             *flags: str) -> Iterator[Application]:
    token_file = tmp_path / "token.json"
    seed_token(cloud, token_file, now=None if clock is None else clock.now())
    config = load_config(exporter_args(
        cloud, token_file, "--addr", "127.0.0.1:0", "--refresh-interval",
        f"{0.8 * PERIOD:g}s", "--age-stale", "24h", *flags), {})
    client = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, clock or SystemClock(),
                           sleep=lambda _: None)
    app = build_app(config, clock=clock, client=client, log_stream=io.StringIO(),
                    wait=None if clock is None else clock.wait)
    app.start()
    try:
        yield app
    finally:
        app.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    wait_until("condition met", condition, timeout)


def narrowed_calls(cloud: FakeNetatmoCloud) -> list[str]:
    return [r.target for r in cloud.requests() if "device_id=" in r.target]


def cadence_account() -> Account:
    return demo_account(frozen=True).with_cadence(Cadence(PERIOD, miss_every=0))


def sample(app: Application, name: str, **labels: str) -> float | None:
    return app.registry.get_sample_value(name, labels)


def test_aligned_mode_learns_each_rhythm_and_calls_one_device_at_a_time(tmp_path: Path) -> None:
    with running(tmp_path, cadence_account()) as (app, cloud):
        wait_for(lambda: len(app.refresher.state().cadences) == 5 and all(
            c.state == "aligned" for c in app.refresher.state().cadences)
            and len(narrowed_calls(cloud)) >= 5)
        _, page = http_get(app.url + "/")
        period = sample(app, "netatmo_device_upload_period_seconds",
                        station="Maison (Lyon)", home="Maison")
        next_call = sample(app, "netatmo_next_refresh_timestamp_seconds")
        last_call = sample(app, "netatmo_last_refresh_time")

    assert period == PERIOD
    assert next_call is not None and last_call is not None and next_call > last_call
    narrowed = narrowed_calls(cloud)
    assert {t.split("device_id=")[1] for t in narrowed} <= {
        s.replace(":", "%3A") for s in (*STATIONS, "70:ee:50:00:bb:01", "70:ee:50:00:bb:02")}
    assert 'data-mode="aligned"' in page and 'id="next-call"' in page
    assert page.count('class="cadence aligned"') == 5
    assert "every 30 s" in page and "Maison (Lyon)" in page


def test_fixed_mode_asks_for_every_device_each_interval(tmp_path: Path) -> None:
    with running(tmp_path, cadence_account(), "--refresh-mode", "fixed") as (app, cloud):
        wait_for(lambda: cloud.count("getstationsdata") >= 3)
        _, page = http_get(app.url + "/")
        period = sample(app, "netatmo_device_upload_period_seconds",
                        station="Maison (Lyon)", home="Maison")

    assert narrowed_calls(cloud) == []
    assert period is None
    assert 'data-mode="fixed"' in page and 'id="cadences"' not in page


@pytest.mark.parametrize(("fault", "reason", "shown"), [
    (Fault.api_error(403, 13, "Application does not have the good scope rights"),
     "missing_scope", "does not include a permission"),
    (Fault.oauth_error("too_many_connections", status=403), "rate_limited",
     "too_many_connections"),
])
def test_refused_data_calls_are_down_at_the_first_refresh_with_the_reason_shown(
        tmp_path: Path, fault: Fault, reason: str, shown: str) -> None:
    account = demo_account(frozen=True)
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=account) as cloud:
        cloud.inject("getstationsdata", fault, times=None)
        cloud.inject("gethomecoachsdata", fault, times=None)
        with exporter(tmp_path, cloud) as app:
            wait_for(lambda: app.refresher.state().status.attempted_at is not None)
            _, page = http_get(app.url + "/")
            up = sample(app, "netatmo_up")
            status = app.refresher.state().status

    assert up == 0.0
    assert status.error_reason == reason
    assert shown in page
    if reason == "rate_limited":
        assert status.backoff_until is not None
        assert status.next_call == pytest.approx(status.backoff_until, abs=1.0)


def test_payload_shapes_seen_in_real_accounts_are_exported(tmp_path: Path) -> None:
    with FakeNetatmoCloud(CLIENT_ID, CLIENT_SECRET, account=quirks_account(frozen=True)
                          ) as cloud, exporter(tmp_path, cloud) as app:
        wait_for(lambda: app.refresher.state().snapshot is not None)
        station = {"module": "id-70:ee:50:00:0a:01", "station": "Sans maison", "home": ""}
        coach = {"module": "Bureau", "station": "Bureau", "home": ""}
        co2 = sample(app, "netatmo_sensor_co2_ppm", **station)
        station_temperature = sample(app, "netatmo_sensor_temperature_celsius", **station)
        coach_temperature = sample(app, "netatmo_sensor_temperature_celsius", **coach)
        coach_co2 = sample(app, "netatmo_sensor_co2_ppm", **coach)
        place = sample(app, "netatmo_device_place_info", station="Bureau", home="",
                       station_id="70:ee:50:00:bb:0a", type="NHC", city="Genève",
                       country="CH", timezone="Europe/Zurich", altitude="375")

    assert co2 == 0.0
    assert station_temperature == 19.5
    assert coach_temperature is None and coach_co2 == 820.0
    assert place == 1.0
