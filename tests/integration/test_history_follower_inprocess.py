"""The history follower wired by build_app, in-process against the simulated cloud, with a
fake receiver: it plans from the live weather and Energy states, writes to the receiver,
keeps its checkpoint beside the token file, shows on /metrics and the status page, and
stopping the service never waits on a receiver that hangs."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.entrypoints.bootstrap import Application, build_app
from netatmo_exporter.entrypoints.config import load_config
from netatmo_exporter.simulator import FakeNetatmoCloud, ScaledClock
from tests.conftest import exporter_args
from tests.integration.test_promtool import ALL_SCOPES
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, http_get, seed_token
from tests.unit.fakes import FakeReceiver

RECEIVER = "http://prom:s3cret@127.0.0.1:9/api/v1/write"


@pytest.fixture
def app(cloud: FakeNetatmoCloud, token_path: Path) -> Iterator[
        tuple[Application, FakeReceiver, io.StringIO]]:
    seed_token(cloud, token_path, scope=ALL_SCOPES)
    stream = io.StringIO()
    # The follower spaces its calls a second apart: twenty modules and rooms on a clock
    # twenty times faster than the wall clock take a second.
    clock = ScaledClock(20.0)
    client = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, clock,
                           sleep=lambda _: None)
    config = load_config(exporter_args(
        cloud, token_path, "--addr", "127.0.0.1:0", "--scope", " ".join(ALL_SCOPES),
        "--history.remote-write-url", RECEIVER, "--history.label", "job=netatmo"), {})
    receiver = FakeReceiver()
    application = build_app(config, client=client, log_stream=stream, clock=clock,
                            wait=clock.wait, history_receiver=receiver)
    yield application, receiver, stream
    application.server.shutdown()
    client.close()


def test_the_follower_writes_modules_and_rooms_of_the_live_state_and_checkpoints_them(
        app: tuple[Application, FakeReceiver, io.StringIO], token_path: Path) -> None:
    application, receiver, _ = app
    assert application.history is not None and application.energy is not None
    application.tokens.load()
    assert application.history.poll_once() == 5.0  # no live state yet: no call either
    application.refresher.poll_once()
    application.energy.poll_once()

    application.history.poll_once()

    assert {"Anémomètre/windstrength", "Salon/co2"} <= receiver.taken.keys()
    assert any(name.endswith("/sp_temperature") for name in receiver.taken)
    saved = json.loads(token_path.with_name("token.json.history.json").read_text())
    assert "module:70:ee:50:00:00:01/70:ee:50:00:00:01" in saved["written_until"]
    assert any(key.startswith("room:") for key in saved["written_until"])
    written = application.registry.get_sample_value(
        "netatmo_exporter_history_samples_written_total")
    assert written == sum(len(samples) for samples in receiver.taken.values()) > 0
    # One call a module and room: those without readings in the lookback have no checkpoint.
    sources = application.history.state().sources
    assert application.registry.get_sample_value(
        "netatmo_exporter_api_budget_calls", {"caller": "history", "window": "1h"}) == len(
        sources) > len(saved["written_until"])


def test_the_status_page_shows_how_far_the_history_is_written(
        app: tuple[Application, FakeReceiver, io.StringIO]) -> None:
    application, _, _ = app
    application.tokens.load()
    application.refresher.poll_once()
    application.energy.poll_once()
    application.history.poll_once()  # type: ignore[union-attr]
    application.server.start()

    status, page = http_get(application.url + "/")

    assert status == 200
    assert 'id="history"' in page and "http://127.0.0.1:9/api/v1/write" in page
    assert "Grenier (Maison)" in page and "s3cret" not in page


def test_stopping_never_waits_on_a_receiver_that_hangs(
        app: tuple[Application, FakeReceiver, io.StringIO]) -> None:
    application, receiver, stream = app
    receiver.gate = threading.Event()
    application.start()
    assert receiver.entered.wait(20.0), stream.getvalue()

    assert application.stop()

    assert not receiver.gate.is_set()  # the write still hangs; the service stopped anyway
    receiver.gate.set()
    assert "event=stopped" in stream.getvalue()
