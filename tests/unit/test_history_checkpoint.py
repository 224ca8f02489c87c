"""The history follower's adapters: its checkpoint file, its metrics and its status view."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import MappingProxyType

import pytest
from prometheus_client import CollectorRegistry

from netatmo_exporter.adapters.history.checkpoint import FileCheckpointStore, checkpoint_path
from netatmo_exporter.adapters.metrics.history_collector import HistoryCollector
from netatmo_exporter.adapters.pages.history_view import page_values
from netatmo_exporter.domain.history.follower import (
    CheckpointError,
    HistoryState,
    SourceProgress,
)
from tests.unit.fakes import FakeClock, FakeLog

NOW = 1_767_225_600.0
KEY = "module:70:ee:50:00:00:01/02:00:00:00:00:01"


def test_the_checkpoint_lives_beside_the_token_file_one_per_instance() -> None:
    assert checkpoint_path("/var/lib/netatmo-exporter/token.json") == Path(
        "/var/lib/netatmo-exporter/token.json.history.json")
    assert checkpoint_path("/var/lib/netatmo-exporter/holiday.json").name == \
        "holiday.json.history.json"


def test_checkpoints_round_trip_mode_0600_without_temporary_files(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path / "token.json.history.json", FakeLog())
    old_umask = os.umask(0o022)
    try:
        store.save({KEY: 1_767_225_300, "room:h/r": 1_767_225_000})
    finally:
        os.umask(old_umask)

    assert store.load() == {KEY: 1_767_225_300, "room:h/r": 1_767_225_000}
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["token.json.history.json"]
    assert json.loads(store.path.read_text())["version"] == 1


def test_no_file_yet_is_no_checkpoint(tmp_path: Path) -> None:
    assert FileCheckpointStore(tmp_path / "x.history.json", FakeLog()).load() == {}


@pytest.mark.parametrize("content", [b"{", b"\xff\xfe", b"[]", b'{"version": 2}',
                                     b'{"version": 1, "written_until": {"a": "soon"}}',
                                     b'{"version": 1, "written_until": {"a": 1.5}}'])
def test_a_corrupt_file_is_moved_aside_with_one_log_line(tmp_path: Path, content: bytes
                                                        ) -> None:
    log = FakeLog()
    path = tmp_path / "token.json.history.json"
    path.write_bytes(content)

    assert FileCheckpointStore(path, log).load() == {}

    (event,) = log.events
    assert event[:2] == ("error", "history_checkpoint_corrupt")
    kept = [name for name in os.listdir(tmp_path) if ".corrupt-" in name]
    assert len(kept) == 1 and event[2]["kept_as"] == str(tmp_path / kept[0])
    assert (tmp_path / kept[0]).read_bytes() == content and not path.exists()


def test_a_save_that_fails_says_which_file(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path / "gone" / "token.json.history.json", FakeLog())

    with pytest.raises(CheckpointError, match=r"cannot write the history checkpoint .*gone"):
        store.save({KEY: 1})


STATE = HistoryState(
    sources=(SourceProgress(KEY, "Jardin (Maison)", int(NOW) - 1800),
             SourceProgress("room:h/r", "room Bureau (Home)", int(NOW) - 600),
             SourceProgress("module:a/b", "Cave (Maison)", None, "Device not found")),
    samples_written=5328, write_errors=MappingProxyType({"unreachable": 3}),
    last_write_at=NOW - 60, last_error="receiver http://p:9090/api/v1/write unreachable",
    last_error_at=NOW - 120, next_poll_at=NOW + 1740)


def test_metrics_render_the_published_state() -> None:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(HistoryCollector(lambda: STATE, FakeClock(NOW)))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("netatmo_exporter_history_samples_written_total") == 5328
    assert value("netatmo_exporter_history_write_errors_total", reason="unreachable") == 3
    assert value("netatmo_exporter_history_write_errors_total", reason="out_of_window") == 0
    assert value("netatmo_exporter_history_checkpoint_age_seconds") == 1800
    assert value("netatmo_exporter_history_last_write_timestamp_seconds") == NOW - 60


def test_before_any_write_there_is_no_age_and_no_last_write() -> None:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(HistoryCollector(HistoryState, FakeClock(NOW)))

    assert registry.get_sample_value("netatmo_exporter_history_samples_written_total") == 0
    assert registry.get_sample_value("netatmo_exporter_history_checkpoint_age_seconds") is None


def test_the_status_view_shows_each_source_and_never_the_receivers_password() -> None:
    values = page_values(lambda: STATE, "https://user:s3cret@mimir.lan:8080/api/v1/push",
                         1800.0, NOW)

    assert values["history_receiver"] == "https://mimir.lan:8080/api/v1/push"
    assert "s3cret" not in repr(values)
    lines = {line.source: line for line in values["history_lines"]}
    assert lines["Jardin (Maison)"].behind == "30 min" and lines["Jardin (Maison)"].health == "ok"
    assert lines["Cave (Maison)"].health == "error"
    assert lines["Cave (Maison)"].written == "nothing yet"
    assert values["history_written"] == "5 328"
    assert page_values(None, "", 0.0, NOW) == {"history_enabled": False}
