"""The backfill's plan, range, paging, call budget and run, against in-memory fakes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import pytest

from netatmo_exporter.domain.call_policy import CallBudget, Stopped
from netatmo_exporter.domain.energy.model import HomeSetup, RoomSetup
from netatmo_exporter.domain.errors import (
    AccessTokenRejected,
    ApiError,
    MissingScope,
    RateLimited,
    TransientError,
)
from netatmo_exporter.domain.history.backfill import Backfill
from netatmo_exporter.domain.history.calls import BudgetedCalls
from netatmo_exporter.domain.history.plan import (
    Cursors,
    HistoryError,
    Plan,
    Row,
    Series,
    Source,
    TimeRange,
    next_begin,
    plan_history,
    resolve_range,
    rows_in_range,
)
from netatmo_exporter.domain.history.when import WhenError, parse_when
from netatmo_exporter.domain.weather.model import Module, Station
from tests.unit.fakes import FakeAccessTokens, FakeClock

T = TypeVar("T")
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-01-01", 1_735_689_600.0),
    ("2025-01-01T06:00:00Z", 1_735_689_600.0 + 6 * 3600),
    ("2025-01-01t06:00:00z", 1_735_689_600.0 + 6 * 3600),
    ("2025-01-01T06:00:00", 1_735_689_600.0 + 6 * 3600),
    ("2025-01-01T08:00:00+02:00", 1_735_689_600.0 + 6 * 3600),
    ("2025-01-01T06:00:00.5Z", 1_735_689_600.0 + 6 * 3600 + 0.5),
    ("2025-01-01T06:00Z", 1_735_689_600.0 + 6 * 3600),
    ("720h", NOW - 720 * 3600),
    ("1h30m", NOW - 5400),
])
def test_when_is_a_date_a_date_time_or_a_duration_ago(text: str, expected: float) -> None:
    assert parse_when(text, NOW, "--from") == pytest.approx(expected)


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "2025-01-01T25:00:00Z", "",
                                  "-1h", "20250101"])
def test_an_unreadable_when_names_the_flag(text: str) -> None:
    with pytest.raises(WhenError, match=r"^--to: "):
        parse_when(text, NOW, "--to")


def test_from_after_to_is_refused() -> None:
    with pytest.raises(HistoryError, match="--from 2025-02-01T00:00:00Z is after --to"):
        resolve_range(1_738_368_000.0, 1_735_689_600.0, NOW, "prometheus")


def test_openmetrics_is_cut_before_the_head_block_with_a_reason() -> None:
    span, notes = resolve_range(NOW - 86400, NOW, NOW, "openmetrics")
    assert span == TimeRange(int(NOW - 86400), int(NOW - 3 * 3600))
    assert len(notes) == 1 and "head block" in notes[0]


def test_openmetrics_within_the_head_block_only_is_refused() -> None:
    with pytest.raises(HistoryError, match="head block"):
        resolve_range(NOW - 3600, NOW, NOW, "openmetrics")


def test_prometheus_text_may_reach_the_present() -> None:
    assert resolve_range(NOW - 3600.5, NOW, NOW, "prometheus") == (
        TimeRange(int(NOW - 3600), int(NOW)), [])


def _station(*modules: Module, sid: str = "70:ee:50:00:00:01", name: str | None = "Maison",
             kind: str = "station", main_type: str = "NAMain", favorite: bool = False
             ) -> Station:
    return Station(sid, kind, Module(sid, main_type, "Salon"), name=name,  # type: ignore[arg-type]
                   home_name="Home", modules=modules, favorite=favorite)


def test_plan_asks_each_module_for_its_types_under_the_live_labels() -> None:
    plan = plan_history([
        _station(Module("02:01", "NAModule1", "Jardin"), Module("05:01", "NAModule2"),
                 Module("06:01", "NAModule3", "Pluie"), Module("03:01", "NAModule4", "Ch")),
        _station(sid="70:ee:50:00:00:09", kind="homecoach", main_type="NHC", name="Coach"),
    ])

    by_title = {source.title: source for source in plan.sources}
    assert by_title["Salon (Maison)"].types == ("temperature", "humidity", "co2", "pressure",
                                                "noise")
    assert by_title["Salon (Maison)"].ids == ("70:ee:50:00:00:01", None)
    assert by_title["Jardin (Maison)"].ids == ("70:ee:50:00:00:01", "02:01")
    wind = by_title["id-05:01 (Maison)"]
    assert wind.types == ("windstrength", "windangle", "guststrength", "gustangle")
    assert wind.series[0].labels == (("module", "id-05:01"), ("station", "Maison"),
                                     ("home", "Home"))
    assert by_title["Pluie (Maison)"].types == ("rain",)
    assert by_title["Ch (Maison)"].types == ("temperature", "humidity", "co2")
    coach = by_title["Salon (Coach)"]
    assert coach.scope == "read_homecoach" and coach.types[-1] == "health_idx"
    assert len({series.key for series in plan.series}) == len(plan.series)


def test_plan_tells_duplicate_names_apart_as_the_live_exporter_does() -> None:
    plan = plan_history([_station(Module("03:01", "NAModule4", "Chambre"),
                                  Module("03:02", "NAModule4", "Chambre"))])
    modules = sorted(dict(source.series[0].labels)["module"] for source in plan.sources)
    assert modules == ["Chambre (03:01)", "Chambre (03:02)", "Salon"]


def test_plan_skips_unknown_types_with_a_line_and_favourites_silently() -> None:
    plan = plan_history([_station(Module("09:01", "NAModule9", "Futur")),
                         _station(sid="fav", name="Voisin", favorite=True)])
    assert [source.title for source in plan.sources] == ["Salon (Maison)"]
    assert plan.notes == ("skipped Futur (Maison): getmeasure does not know module type "
                          "'NAModule9'",)


def test_plan_reads_heated_rooms_under_the_energy_labels() -> None:
    homes = [HomeSetup("h1", "Maison", rooms=(RoomSetup("r1", "Salon", module_ids=("v1",)),
                                              RoomSetup("r2", None, module_ids=("v2",)),
                                              RoomSetup("r3", "Cave")))]
    plan = plan_history([], homes)
    assert [(s.ids, s.types, s.series[0].labels) for s in plan.sources] == [
        (("h1", "r1"), ("temperature", "sp_temperature"), (("room", "Salon"), ("home", "Maison"))),
        (("h1", "r2"), ("temperature", "sp_temperature"), (("room", "id-r2"), ("home", "Maison"))),
    ]
    assert plan.sources[0].scope == "read_thermostat"
    assert plan.notes == ("skipped room Cave (Maison): no heating module measures it",)


def test_a_full_page_continues_after_its_last_reading_a_short_one_ends() -> None:
    full = [(100 + i, (1.0,)) for i in range(4)]
    assert next_begin(100, 1000, full, limit=4) == 104
    assert next_begin(100, 1000, full[:3], limit=4) is None
    assert next_begin(100, 103, full, limit=4) is None
    assert next_begin(100, 1000, [], limit=4) is None


def test_rows_outside_the_range_or_repeated_are_dropped() -> None:
    rows: list[Row] = [(5, (1.0,)), (10, (2.0,)), (10, (3.0,)), (30, (4.0,)), (20, (5.0,))]
    assert rows_in_range(rows, 10, 25) == [(10, (2.0,)), (20, (5.0,))]


def test_budget_keeps_the_hourly_share_and_the_ten_second_share() -> None:
    budget = CallBudget(short_limit=2)
    for at in (0.0, 1.0):
        assert budget.take("backfill", 5, at) == 0.0
    assert budget.take("backfill", 5, 2.0) == pytest.approx(8.0)
    for at in (20.0, 40.0, 60.0):
        assert budget.take("backfill", 5, at) == 0.0
    assert budget.take("backfill", 5, 61.0) == pytest.approx(3539.0)  # 0 leaves the hour
    assert budget.take("backfill", 5, 3600.5) == 0.0


class RecordingWait:
    def __init__(self, clock: FakeClock, stop_after: int | None = None) -> None:
        self.clock = clock
        self.waits: list[float] = []
        self.stop_after = stop_after

    def __call__(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        return self.stop_after is not None and len(self.waits) >= self.stop_after


def _calls(clock: FakeClock, tokens: FakeAccessTokens | None = None, hourly: int = 500,
           stop_after: int | None = None) -> tuple[BudgetedCalls, RecordingWait]:
    wait = RecordingWait(clock, stop_after)
    return BudgetedCalls(tokens or FakeAccessTokens(), hourly, clock, wait), wait


def _failing(*errors: Exception) -> Callable[[str], str]:
    queue = list(errors)

    def request(token: str) -> str:
        if queue:
            raise queue.pop(0)
        return f"answer with {token}"
    return request


def test_a_rejected_token_is_reported_and_the_call_tried_once_more() -> None:
    tokens = FakeAccessTokens()
    calls, _ = _calls(FakeClock(NOW), tokens)
    assert calls.call(_failing(AccessTokenRejected("code 3"))) == "answer with access-1"
    assert tokens.rejected == ["access-0"]
    with pytest.raises(AccessTokenRejected):
        calls.call(_failing(AccessTokenRejected("2"), AccessTokenRejected("3")))


def test_rate_limits_are_waited_out_doubling() -> None:
    calls, wait = _calls(FakeClock(NOW))
    answer = calls.call(_failing(RateLimited("26"), RateLimited("26", retry_after=300.0),
                                 RateLimited("26")))
    assert answer == "answer with access-0"
    assert wait.waits == [60.0, 300.0, 240.0]


def test_passing_failures_are_retried_a_bounded_number_of_times() -> None:
    calls, wait = _calls(FakeClock(NOW))
    assert calls.call(_failing(TransientError("5xx"))) == "answer with access-0"
    with pytest.raises(TransientError):
        calls.call(_failing(*[TransientError("5xx")] * 10))
    assert wait.waits == [5.0, 5.0, 10.0, 20.0, 40.0, 80.0]
    with pytest.raises(MissingScope):
        calls.call(_failing(MissingScope("getmeasure")))


def test_beside_a_service_each_call_is_booked_in_both_budgets_within_the_share() -> None:
    clock = FakeClock(NOW)
    service = CallBudget()
    for i in range(490):  # the service's own callers spent most of the hour
        service.take("weather", None, NOW - 3000.0 + i)
    wait = RecordingWait(clock)
    calls = BudgetedCalls(FakeAccessTokens(), 20, clock, wait, service=service)

    for _ in range(15):
        calls.call(_failing())

    use = service.use(clock.now())
    assert use.last_hour <= 500 and dict(use.by_caller)["backfill"] == 15
    assert len(calls.recent()) == 15  # the checkpoint's count: the calls made
    assert wait.waits and sum(wait.waits) > 0  # waited for the service's calls to age out


def test_the_own_share_caps_the_backfill_even_when_the_service_has_room() -> None:
    clock = FakeClock(NOW)
    service = CallBudget()
    wait = RecordingWait(clock)
    calls = BudgetedCalls(FakeAccessTokens(), 3, clock, wait, service=service)
    calls.carry_over([NOW - 100.0, NOW - 50.0])  # a stopped run's calls, unknown to it

    calls.call(_failing())
    calls.call(_failing())

    assert dict(service.use(clock.now()).by_caller)["backfill"] == 2
    assert wait.waits == [pytest.approx(3500.0)]  # the share of 3 was full until then


def _waits_said(hourly: int, service: CallBudget | None, calls_made: int) -> list[str]:
    clock, said = FakeClock(NOW), []
    calls = BudgetedCalls(FakeAccessTokens(), hourly, clock, RecordingWait(clock),
                          lambda seconds, why: said.append(f"{seconds:.0f}s {why}"), service)
    for _ in range(calls_made):
        calls.call(_failing())
    return said


def test_each_wait_names_the_limit_it_waits_for() -> None:
    burst = _waits_said(250, None, 26)  # the backfill's half of the 10-second window
    assert burst == ["10s room in the 10-second window (25 calls per 10 s)"]
    share = _waits_said(3, None, 4)
    assert share == ["3600s the backfill's share of the hour (3 calls per hour)"]
    service = CallBudget()
    for i in range(500):
        service.take("weather", None, NOW - 3000.0 + i)
    beside = _waits_said(250, service, 1)
    assert beside == ["600s room in the running exporter's budget for the account"]


def test_a_stop_during_a_wait_ends_the_call() -> None:
    calls, _ = _calls(FakeClock(NOW), stop_after=1)
    with pytest.raises(Stopped):
        calls.call(_failing(RateLimited("26")))


class FakeHistory:
    """A station that stored a reading every 300 s; a hole between `hole` bounds."""

    def __init__(self, hole: tuple[int, int] = (0, 0)) -> None:
        self.pages: list[tuple[str, int]] = []
        self.hole = hole

    def _rows(self, key: str, types: Sequence[str], begin: int, end: int, limit: int
              ) -> tuple[Row, ...]:
        self.pages.append((key, begin))
        first = -(-begin // 300) * 300
        rows = []
        for time in range(first, end + 1, 300):
            if self.hole[0] <= time < self.hole[1]:
                continue
            rows.append((time, tuple(None if (time // 300) % 7 == 0 and i == 1
                                     else float(time % 1000 + i) for i in range(len(types)))))
            if len(rows) == limit:
                break
        return tuple(rows)

    def fetch_measure(self, access_token: str, device_id: str, module_id: str | None,
                      types: Sequence[str], date_begin: int, date_end: int, limit: int
                      ) -> tuple[Row, ...]:
        return self._rows(f"{device_id}/{module_id}", types, date_begin, date_end, limit)

    def fetch_room_measure(self, access_token: str, home_id: str, room_id: str,
                           types: Sequence[str], date_begin: int, date_end: int, limit: int
                           ) -> tuple[Row, ...]:
        return self._rows(f"{home_id}/{room_id}", types, date_begin, date_end, limit)


class MemorySink:
    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[int, float]]] = {}
        self.checkpoints: list[Cursors] = []

    def append(self, series: Series, samples: Sequence[tuple[int, float]]) -> int:
        kept = self.samples.setdefault(series.key, [])
        kept.extend(samples)
        return len(kept)

    def checkpoint(self, cursors: Cursors) -> None:
        self.checkpoints.append(Cursors(dict(cursors.begins), dict(cursors.spooled),
                                        cursors.calls, list(cursors.recent_calls),
                                        dict(cursors.skipped)))

    def cut_back(self, cursors: Cursors) -> None:
        for key, size in cursors.spooled.items():
            del self.samples.setdefault(key, [])[size:]


class NoProgress:
    def __init__(self) -> None:
        self.skips: list[tuple[str, str]] = []

    def page_done(self, source: object, cursors: Cursors) -> None:
        pass

    def skipped(self, source: Source, reason: str) -> None:
        self.skips.append((source.title, reason))


def _plan() -> Plan:
    homes = [HomeSetup("h1", "Maison", rooms=(RoomSetup("r1", "Salon", module_ids=("v1",)),))]
    return plan_history([_station(Module("02:01", "NAModule1", "Jardin"))], homes)


SPAN = TimeRange(1_735_689_600, 1_735_689_600 + 10 * 86400)


def _run(plan: Plan, cursors: Cursors, sink: MemorySink, history: FakeHistory,
         stop: threading.Event | None = None, limit: int = 100) -> Backfill:
    calls, _ = _calls(FakeClock(NOW))
    backfill = Backfill(plan, SPAN, cursors, history, sink, calls, NoProgress(),
                        stop or threading.Event(), limit=limit)
    backfill.run()
    return backfill


def test_a_run_pages_every_source_once_and_keeps_holes() -> None:
    plan, sink = _plan(), MemorySink()
    history = FakeHistory(hole=(SPAN.begin + 86400, SPAN.begin + 90000))
    _run(plan, Cursors.start(plan, SPAN), sink, history)

    readings = 10 * 288 + 1 - 12
    per_source = -(-readings // 100) + (1 if readings % 100 == 0 else 0)
    assert len(history.pages) == len(set(history.pages)) == 3 * per_source
    temperature = sink.samples[plan.sources[0].series[0].key]
    assert len(temperature) == readings
    assert [t for t, _ in temperature] == sorted({t for t, _ in temperature})
    humidity = sink.samples[plan.sources[0].series[1].key]
    assert len(humidity) < readings  # the nulls stay holes
    assert sink.checkpoints[-1].begins == dict.fromkeys(sink.checkpoints[-1].begins)


def test_a_stopped_run_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one() -> None:
    plan = _plan()
    whole = MemorySink()
    full = FakeHistory()
    _run(plan, Cursors.start(plan, SPAN), whole, full)

    stop = threading.Event()
    sink = MemorySink()
    first = FakeHistory()
    original = first.fetch_measure

    def stop_midway(*args: object) -> tuple[Row, ...]:
        if len(first.pages) == 40:
            stop.set()
        return original(*args)  # type: ignore[arg-type]

    first.fetch_measure = stop_midway  # type: ignore[method-assign]
    with pytest.raises(Stopped):
        _run(plan, Cursors.start(plan, SPAN), sink, first, stop)
    checkpoint = sink.checkpoints[-1]
    sink.samples[plan.sources[0].series[0].key].append((1, 99.0))  # written, never checkpointed
    sink.cut_back(checkpoint)
    second = FakeHistory()
    _run(plan, checkpoint, sink, second)

    assert sink.samples == whole.samples
    assert len(first.pages) + len(second.pages) == len(full.pages)
    assert not set(first.pages) & set(second.pages)


def test_a_run_started_again_keeps_to_the_share_of_the_hour_the_first_began() -> None:
    clock = FakeClock(NOW)
    first, _ = _calls(clock, hourly=10)
    for _ in range(6):
        first.call(_failing())
        clock.advance(60.0)
    again, waits = _calls(clock, hourly=10)  # a new process, reading the checkpoint
    again.carry_over(first.recent())
    for _ in range(4):
        again.call(_failing())
    assert waits.waits == []
    again.call(_failing())
    assert waits.waits == [pytest.approx(3600.0 - 360.0)]


def test_the_checkpoint_holds_the_calls_of_the_last_hour() -> None:
    plan, sink = _plan(), MemorySink()
    _run(plan, Cursors.start(plan, SPAN), sink, FakeHistory())
    assert len(sink.checkpoints[-1].recent_calls) == sink.checkpoints[-1].calls


def test_a_module_netatmo_no_longer_knows_is_left_out_and_the_rest_fetched() -> None:
    plan = _plan()

    class Forgetting(FakeHistory):
        def fetch_measure(self, access_token: str, device_id: str, module_id: str | None,
                          types: Sequence[str], date_begin: int, date_end: int, limit: int
                          ) -> tuple[Row, ...]:
            if module_id == "02:01":
                raise ApiError("Netatmo getmeasure: API error code 9: Device not found")
            return super().fetch_measure(access_token, device_id, module_id, types,
                                         date_begin, date_end, limit)

    sink, progress = MemorySink(), NoProgress()
    calls, _ = _calls(FakeClock(NOW))
    Backfill(plan, SPAN, Cursors.start(plan, SPAN), Forgetting(), sink, calls, progress,
             threading.Event(), limit=100).run()

    jardin = next(source for source in plan.sources if source.ids[1] == "02:01")
    assert progress.skips == [("Jardin (Maison)",
                               "Netatmo getmeasure: API error code 9: Device not found")]
    assert sink.checkpoints[-1].skipped == {jardin.key: progress.skips[0][1]}
    assert all(sink.samples.get(series.key, []) == [] for series in jardin.series)
    assert all(begin is None for begin in sink.checkpoints[-1].begins.values())
    assert len(sink.samples[plan.sources[0].series[0].key]) > 0


def test_a_scope_netatmo_refuses_stops_the_run_with_one_line() -> None:
    plan = _plan()

    class Refusing(FakeHistory):
        def fetch_room_measure(self, *args: object) -> tuple[Row, ...]:  # type: ignore[override]
            raise MissingScope("getroommeasure")

    with pytest.raises(HistoryError, match=r"^Netatmo refuses the history of room Salon "
                                           r"\(Maison\): the authorization lacks scope "
                                           "read_thermostat"):
        _run(plan, Cursors.start(plan, SPAN), MemorySink(), Refusing())
