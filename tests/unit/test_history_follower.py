"""The history follower on the fake clock: fakes of Netatmo's stored history, a receiver and
the checkpoint store, each with its state in plain sight."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

import pytest

from netatmo_exporter.domain.call_policy import CallBudget
from netatmo_exporter.domain.energy.model import HomeSetup, RoomSetup
from netatmo_exporter.domain.errors import ApiError, RateLimited, TransientError
from netatmo_exporter.domain.history.follower import (
    CALL_SPACING,
    HOURLY_SHARE,
    LONG_RECEIVER_WAIT,
    NOT_READY_WAIT,
    HistoryFollower,
)
from netatmo_exporter.domain.history.plan import Row
from netatmo_exporter.domain.history.remote_write import ReceiverError
from netatmo_exporter.domain.weather.model import Module, Station
from tests.unit.fakes import (
    FakeAccessTokens,
    FakeClock,
    FakeLog,
    FakeReceiver,
    MemoryCheckpoints,
)

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
STEP = 300
INTERVAL = 1800.0
LOOKBACK = 3 * 3600.0
MAIN, OUTDOOR, HOME, ROOM = "70:ee:50:00:00:01", "02:00:00:00:00:01", "home-1", "room-1"


class StoredHistory:
    """Netatmo's history: a reading every 300 s, stored once its time has come; every
    call with its source and range in `calls`. `failures` are raised first, in order."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, str, int, int]] = []
        self.failures: list[Exception] = []
        self.silent: set[str] = set()
        """Modules that stopped storing readings."""

    def _rows(self, key: str, types: Sequence[str], begin: int, end: int, limit: int
              ) -> tuple[Row, ...]:
        self.calls.append((self.clock.now(), key, begin, end))
        if self.failures:
            raise self.failures.pop(0)
        if key in self.silent:
            return ()
        first = -(-begin // STEP) * STEP
        last = min(end, int(self.clock.now()), first + (limit - 1) * STEP)
        return tuple((time, tuple(value(time, i) for i in range(len(types))))
                     for time in range(first, last + 1, STEP))

    def fetch_measure(self, access_token: str, device_id: str, module_id: str | None,
                      types: Sequence[str], date_begin: int, date_end: int, limit: int
                      ) -> tuple[Row, ...]:
        return self._rows(module_id or device_id, types, date_begin, date_end, limit)

    def fetch_room_measure(self, access_token: str, home_id: str, room_id: str,
                           types: Sequence[str], date_begin: int, date_end: int, limit: int
                           ) -> tuple[Row, ...]:
        return self._rows(room_id, types, date_begin, date_end, limit)


def value(time: int, index: int) -> float:
    return float(time % 997 + index)


STATIONS = (Station(MAIN, "station", Module(MAIN, "NAMain", "Salon"), name="Maison",
                    home_name="Home", modules=(Module(OUTDOOR, "NAModule1", "Jardin"),)),)
HOMES = (HomeSetup(HOME, "Home", rooms=(RoomSetup(ROOM, "Bureau", module_ids=("09:01",)),)),)


class Rig:
    def __init__(self, store: MemoryCheckpoints | None = None, *, clock: FakeClock | None = None,
                 homes: bool = False, budget: CallBudget | None = None,
                 interval: float = INTERVAL, history: type[StoredHistory] = StoredHistory
                 ) -> None:
        self.clock = clock or FakeClock(float(NOW))
        self.history = history(self.clock)
        self.receiver = FakeReceiver()
        self.store = store or MemoryCheckpoints()
        self.log = FakeLog()
        self.stations: tuple[Station, ...] | None = STATIONS
        self.follower = HistoryFollower(
            FakeAccessTokens(), self.history, self.receiver, self.store, self.clock, self.log,
            lookback=LOOKBACK, interval=interval, stations=lambda: self.stations,
            homes=(lambda: HOMES) if homes else None, budget=budget, wait=self.clock.wait)

    def poll(self) -> float:
        """One poll, then the wait it asks for on the fake clock."""
        wait = self.follower.poll_once()
        self.clock.advance(wait)
        return wait


def _times(start: float, end: float) -> list[int]:
    return list(range(-(-int(start) // STEP) * STEP, int(end) + 1, STEP))


def test_first_start_writes_the_lookback_and_checkpoints_each_source_by_its_ids() -> None:
    rig = Rig(homes=True)

    wait = rig.follower.poll_once()

    expected = [(t, value(t, 0)) for t in _times(NOW - LOOKBACK, NOW)]
    assert rig.receiver.taken["Jardin/temperature"] == expected
    assert rig.receiver.taken["Salon/noise"] == [(t, value(t, 4)) for t in _times(
        NOW - LOOKBACK, NOW)]
    assert rig.receiver.taken["Bureau/sp_temperature"] == [
        (t, value(t, 1)) for t in _times(NOW - LOOKBACK, NOW)]
    assert rig.store.saved[-1] == {f"module:{MAIN}/{MAIN}": NOW, f"module:{MAIN}/{OUTDOOR}": NOW,
                                   f"room:{HOME}/{ROOM}": NOW}
    assert [(key, begin) for _, key, begin, _ in rig.history.calls] == [
        (MAIN, NOW - LOOKBACK), (OUTDOOR, NOW - LOOKBACK), (ROOM, NOW - LOOKBACK)]
    assert wait == INTERVAL - 2 * CALL_SPACING  # the cycle took two pauses between calls
    state = rig.follower.state()
    assert state.samples_written == 37 * (5 + 2 + 2)
    assert state.last_write_at == NOW + 2 and state.oldest_checkpoint() == NOW
    assert {(s.title, s.written_until) for s in state.sources} == {
        ("Salon (Maison)", NOW), ("Jardin (Maison)", NOW), ("room Bureau (Home)", NOW)}


def test_the_checkpoint_advances_only_after_the_receiver_took_the_readings() -> None:
    rig = Rig()
    rig.receiver.errors = [ReceiverError("unreachable", "receiver http://r/api/v1/write: "
                                         "connection refused", retry=True)]

    wait = rig.poll()

    assert rig.store.saved == [] and rig.receiver.taken == {}
    assert wait == 5.0
    assert rig.follower.state().write_errors == {"unreachable": 1}
    calls = len(rig.history.calls)
    rig.poll()
    # The kept page went out without a new call; then the cycle went on.
    assert rig.history.calls[calls][1] == OUTDOOR and len(rig.history.calls) == calls + 1
    assert rig.receiver.taken["Salon/temperature"] == [
        (t, value(t, 0)) for t in _times(NOW - LOOKBACK, NOW)]
    assert rig.store.saved[0] == {f"module:{MAIN}/{MAIN}": NOW}
    assert len(rig.log.names("warning")) == 1


def test_retries_back_off_honour_retry_after_and_log_one_line() -> None:
    rig = Rig()
    for _ in range(5):
        rig.receiver.errors.append(ReceiverError("server_error", "receiver answered 503",
                                                 retry=True))
    rig.receiver.errors.append(ReceiverError("rate_limited", "receiver answered 429",
                                             retry=True, retry_after=120.0))

    waits = [rig.poll() for _ in range(7)]

    assert waits[:6] == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0]
    assert waits[6] == pytest.approx(INTERVAL - sum(waits[:6]))  # through: the next cycle
    assert rig.log.names("warning") == ["history_write_failed", "history_write_failed"]
    assert rig.log.names("info") == ["history_recovered"]
    assert rig.receiver.taken["Salon/temperature"][0] == (NOW - 3 * 3600, value(NOW - 10800, 0))


def test_readings_the_receiver_will_never_take_are_reported_once_with_the_backfill_command(
        ) -> None:
    rig = Rig()
    rig.receiver.errors = [ReceiverError("out_of_window", f"receiver refused {n}: out of "
                                         "bounds", retry=False, advice=f"or `netatmo-exporter "
                                         f"backfill --from {n}`") for n in range(2)]

    rig.poll()

    (line,) = [kw for level, event, kw in rig.log.events if event == "history_readings_refused"]
    assert line["backfill"] == ("netatmo-exporter backfill --from 2025-12-31T21:00:00Z "
                                "--to 2026-01-01T00:00:00Z --output history.om")
    assert rig.store.saved[-1] == {f"module:{MAIN}/{MAIN}": NOW, f"module:{MAIN}/{OUTDOOR}": NOW}
    assert rig.receiver.writes == 2
    assert "backfill --from 2025-12-31T21:00:00Z" in (rig.follower.state().last_error or "")
    assert "backfill" not in line["error"]  # the command once, over the whole refused range
    assert (rig.follower.state().last_error or "").count("netatmo-exporter backfill") == 1
    rig.poll()
    assert rig.receiver.writes == 4  # the next interval's readings, not the refused ones
    assert all(begin == NOW + 1 for _, _, begin, _ in rig.history.calls[2:])


@pytest.mark.parametrize("reason", ["unauthorized", "not_enabled"])
def test_a_receiver_only_the_operator_can_fix_holds_the_readings_and_waits_long(
        reason: str) -> None:
    rig = Rig()
    rig.receiver.errors = [ReceiverError(reason, "receiver answered 401: check the password "
                                         "file", retry=False)] * 3

    waits = [rig.poll() for _ in range(3)]

    assert waits == [max(INTERVAL, LONG_RECEIVER_WAIT)] * 3
    assert rig.store.saved == [] and len(rig.history.calls) == 1
    assert rig.log.names("warning") == ["history_write_failed"]
    rig.poll()
    assert rig.store.saved[0] == {f"module:{MAIN}/{MAIN}": NOW}


def test_a_restart_resumes_from_the_checkpoint_and_catches_an_outage_up_oldest_first(
        ) -> None:
    first = Rig()
    first.poll()
    clock = FakeClock(float(NOW + 2 * 86400))  # stopped for two days
    second = Rig(first.store, clock=clock)

    second.follower.poll_once()

    for name in ("Salon/temperature", "Jardin/humidity"):
        times = [t for t, _ in first.receiver.taken[name] + second.receiver.taken[name]]
        assert times == _times(NOW - LOOKBACK, NOW + 2 * 86400)
    # 577 readings a source, one page each; the calls start right after the checkpoint.
    assert [(key, begin) for _, key, begin, _ in second.history.calls] == [
        (MAIN, NOW + 1), (OUTDOOR, NOW + 1)]


def test_a_long_outage_pages_oldest_first_within_the_followers_share_of_the_hour() -> None:
    budget = CallBudget()
    store = MemoryCheckpoints({f"module:{MAIN}/{MAIN}": NOW, f"module:{MAIN}/{OUTDOOR}": NOW})
    days = 240
    rig = Rig(store, clock=FakeClock(float(NOW + days * 86400)), budget=budget)

    for _ in range(40):
        rig.poll()
        if rig.store.saved[-1][f"module:{MAIN}/{OUTDOOR}"] >= NOW + days * 86400 - STEP:
            break

    times = [at for at, _, _, _ in rig.history.calls]
    assert len(times) == 2 * 68  # 69,120 readings a source in pages of 1024
    assert max(sum(1 for t in times if start <= t < start + 3600) for start in times) \
        == HOURLY_SHARE
    assert min(b - a for a, b in itertools.pairwise(times)) == CALL_SPACING
    begins = [begin for _, key, begin, _ in rig.history.calls if key == MAIN]
    assert begins == sorted(begins)
    assert rig.receiver.taken["Salon/temperature"] == [
        (t, value(t, 0)) for t in _times(NOW + 1, NOW + days * 86400)]
    assert budget.use(rig.clock.now()).by_caller[0][0] == "history"


def test_steady_state_costs_one_call_per_source_per_interval() -> None:
    rig = Rig(homes=True)
    for _ in range(48):
        rig.poll()

    assert rig.clock.now() == NOW + 48 * INTERVAL
    by_source: dict[str, list[float]] = {}
    for at, key, _, _ in rig.history.calls:
        by_source.setdefault(key, []).append(at)
    assert sorted(by_source) == sorted([MAIN, OUTDOOR, ROOM])
    for times in by_source.values():
        assert len(times) == 48
        assert all(b - a >= INTERVAL for a, b in itertools.pairwise(times))
    written = [t for t, _ in rig.receiver.taken["Bureau/temperature"]]
    assert written == _times(NOW - LOOKBACK, NOW + 47 * INTERVAL)


def test_netatmo_rate_limit_backs_off_and_the_cycle_goes_on_where_it_stopped() -> None:
    rig = Rig()
    rig.history.failures = [RateLimited("Netatmo: user usage reached (code 26)")]

    waits = [rig.poll(), rig.poll()]

    assert waits[0] == 120.0
    assert [key for _, key, _, _ in rig.history.calls] == [MAIN, MAIN, OUTDOOR]
    assert rig.log.names("warning") == ["history_fetch_failed"]
    assert rig.store.saved[-1] == {f"module:{MAIN}/{MAIN}": NOW, f"module:{MAIN}/{OUTDOOR}": NOW}


def test_a_module_netatmo_refuses_is_skipped_and_the_others_go_on() -> None:
    rig = Rig()
    rig.history.failures = [ApiError("Netatmo getmeasure: API error code 9: Device not found")]

    rig.poll()

    assert set(rig.store.saved[-1]) == {f"module:{MAIN}/{OUTDOOR}"}
    salon = next(s for s in rig.follower.state().sources if s.title == "Salon (Maison)")
    assert salon.written_until is None and "Device not found" in (salon.last_error or "")


def test_a_passing_netatmo_failure_waits_a_minute_and_keeps_the_checkpoint() -> None:
    rig = Rig()
    rig.history.failures = [TransientError("Netatmo: timeout")] * 3  # the poller's 3 tries

    assert rig.poll() == 60.0
    assert rig.store.saved == []


def test_nothing_is_asked_before_the_live_state_has_stations() -> None:
    rig = Rig()
    rig.stations = None

    assert rig.poll() == NOT_READY_WAIT
    assert rig.history.calls == [] and rig.receiver.writes == 0


def test_a_checkpoint_that_cannot_be_saved_is_said_once_and_kept_in_memory() -> None:
    rig = Rig()
    rig.store.fail = True

    rig.poll()
    rig.poll()

    assert rig.log.names("warning") == ["history_checkpoint_not_saved"]
    assert [begin for _, _, begin, _ in rig.history.calls[2:]] == [NOW + 1] * 2
    assert "No space" in (rig.follower.state().last_error or "")


def test_a_module_that_stopped_storing_readings_is_not_behind_once_looked_at() -> None:
    written = NOW - 86400
    rig = Rig(MemoryCheckpoints({f"module:{MAIN}/{OUTDOOR}": written}))
    rig.history.silent.add(OUTDOOR)

    rig.poll()

    jardin = next(s for s in rig.follower.state().sources if s.title == "Jardin (Maison)")
    assert jardin.written_until == written
    assert jardin.complete_until == NOW + 1 and jardin.up_to_date == NOW + 1
    assert rig.follower.state().oldest_checkpoint() == NOW


def test_a_call_the_stopping_service_cut_short_ends_the_follower_quietly() -> None:
    entered, release = threading.Event(), threading.Event()

    class ClosedUnderIt(StoredHistory):
        def _rows(self, key: str, types: Sequence[str], begin: int, end: int, limit: int
                  ) -> tuple[Row, ...]:
            entered.set()
            release.wait(10.0)
            raise RuntimeError("Cannot send a request, as the client has been closed.")

    rig = Rig(history=ClosedUnderIt)
    thread = threading.Thread(target=rig.follower.run)
    thread.start()
    assert entered.wait(10.0)
    rig.follower.loop.stop()
    release.set()
    thread.join(10.0)

    assert not thread.is_alive()
    assert rig.log.events == []
