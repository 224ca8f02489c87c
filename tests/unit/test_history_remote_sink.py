"""`backfill --remote-write`'s sink: a page is checkpointed only after the receiver took it;
retried answers are waited out a bounded number of times; a stop request ends the wait."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netatmo_exporter.adapters.history.remote_sink import FIRST_WAIT, RemoteWriteSink
from netatmo_exporter.domain.call_policy import Stopped
from netatmo_exporter.domain.history.plan import (
    Cursors,
    HistoryError,
    Plan,
    Series,
    Source,
    TimeRange,
)
from netatmo_exporter.domain.history.remote_write import ReceiverError
from tests.unit.fakes import FakeReceiver

SERIES = Series("m000-temperature", "temperature", "temperature", (("module", "Outdoor"),))
PLAN = Plan((Source("m000", "module", ("70:ee:50:00:00:01", None), "read_station",
                    "Outdoor (Home)", (SERIES,)),))
SPAN = TimeRange(1_733_000_000, 1_733_086_399)


class Waits:
    def __init__(self, stop_at: int | None = None) -> None:
        self.waited: list[float] = []
        self.told: list[str] = []
        self._stop_at = stop_at

    def wait(self, seconds: float) -> bool:
        self.waited.append(seconds)
        return self._stop_at is not None and len(self.waited) >= self._stop_at

    def waiting(self, seconds: float, why: str) -> None:
        self.told.append(f"{seconds:g}s {why}")


def _sink(tmp_path: Path, receiver: FakeReceiver, waits: Waits, tries: int = 4
          ) -> tuple[RemoteWriteSink, Cursors]:
    sink = RemoteWriteSink(tmp_path / "work", receiver, waits.wait, waits.waiting, tries)
    cursors = Cursors.start(PLAN, SPAN)
    sink.start({"command": "test"}, PLAN, SPAN, cursors)
    return sink, cursors


def _saved(tmp_path: Path) -> dict[str, object]:
    state: dict[str, object] = json.loads((tmp_path / "work" / "checkpoint.json").read_text())
    return state


def _page(sink: RemoteWriteSink, cursors: Cursors, begin: int, samples: list[tuple[int, float]]
          ) -> None:
    """As `Backfill` does with a page."""
    cursors.spooled[SERIES.key] = sink.append(SERIES, samples)
    cursors.begins["m000"] = begin
    sink.checkpoint(cursors)


def test_a_page_is_checkpointed_after_the_receiver_took_it(tmp_path: Path) -> None:
    receiver = FakeReceiver()
    sink, cursors = _sink(tmp_path, receiver, Waits())
    _page(sink, cursors, SPAN.begin + 600, [(SPAN.begin, 1.0), (SPAN.begin + 300, 2.0)])
    assert receiver.stored == [(SPAN.begin, 1.0), (SPAN.begin + 300, 2.0)]
    assert _saved(tmp_path)["begins"] == {"m000": SPAN.begin + 600}
    assert _saved(tmp_path)["spooled"] == {SERIES.key: 2}
    assert sink.written == 2
    sink.remove()
    assert not (tmp_path / "work").exists()


def test_a_refusal_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    receiver = FakeReceiver([ReceiverError("out_of_window", "remote write to X: too old",
                                           retry=False)])
    waits = Waits()
    sink, cursors = _sink(tmp_path, receiver, waits)
    with pytest.raises(HistoryError, match=r"^remote write to X: too old$"):
        _page(sink, cursors, SPAN.begin + 600, [(SPAN.begin, 1.0)])
    assert _saved(tmp_path)["begins"] == {"m000": SPAN.begin}
    assert waits.waited == [] and len(receiver.attempts) == 1


def test_retried_answers_are_waited_out_doubling_or_as_asked(tmp_path: Path) -> None:
    receiver = FakeReceiver([
        ReceiverError("server_error", "remote write to X: HTTP 503", retry=True),
        ReceiverError("rate_limited", "remote write to X: HTTP 429", retry=True, retry_after=7),
        ReceiverError("unreachable", "remote write to X: refused", retry=True)])
    waits = Waits()
    sink, cursors = _sink(tmp_path, receiver, waits)
    _page(sink, cursors, SPAN.begin + 600, [(SPAN.begin, 1.0)])
    assert waits.waited == [FIRST_WAIT, 7, FIRST_WAIT * 4]
    assert waits.told[0] == "2s remote write to X: HTTP 503"
    assert receiver.stored == [(SPAN.begin, 1.0)] and len(receiver.attempts) == 4
    assert _saved(tmp_path)["begins"] == {"m000": SPAN.begin + 600}


def test_retries_are_bounded(tmp_path: Path) -> None:
    receiver = FakeReceiver([ReceiverError("server_error", "remote write to X: HTTP 502",
                                           retry=True)] * 10)
    sink, cursors = _sink(tmp_path, receiver, Waits(), tries=4)
    with pytest.raises(HistoryError, match=r"HTTP 502 \(gave up after 4 tries\)"):
        _page(sink, cursors, SPAN.begin + 600, [(SPAN.begin, 1.0)])
    assert len(receiver.attempts) == 4
    assert _saved(tmp_path)["begins"] == {"m000": SPAN.begin}


def test_a_stop_request_ends_the_wait_with_the_checkpoint_kept(tmp_path: Path) -> None:
    receiver = FakeReceiver([ReceiverError("server_error", "remote write to X: HTTP 503",
                                           retry=True, retry_after=3600)])
    waits = Waits(stop_at=1)
    sink, cursors = _sink(tmp_path, receiver, waits)
    with pytest.raises(Stopped):
        _page(sink, cursors, SPAN.begin + 600, [(SPAN.begin, 1.0)])
    assert waits.waited == [300.0]  # the receiver's hour capped at 5 minutes
    assert _saved(tmp_path)["begins"] == {"m000": SPAN.begin}


def test_a_resumed_run_counts_on_from_the_checkpoint(tmp_path: Path) -> None:
    sink, cursors = _sink(tmp_path, FakeReceiver(), Waits())
    _page(sink, cursors, SPAN.begin + 600, [(SPAN.begin, 1.0), (SPAN.begin + 300, 2.0)])
    sink.release()
    again = RemoteWriteSink(tmp_path / "work", FakeReceiver(), Waits().wait, Waits().waiting)
    resumed = again.load({"command": "test"})
    assert resumed is not None
    plan, span, loaded = resumed
    assert (plan, span, loaded.begins) == (PLAN, SPAN, {"m000": SPAN.begin + 600})
    assert again.append(SERIES, [(SPAN.begin + 600, 3.0)]) == 3
