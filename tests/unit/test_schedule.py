"""UploadPlanner: learning a device's upload rhythm and planning the next data call."""

from __future__ import annotations

import itertools
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netatmo_exporter.domain.weather.schedule import (
    DEFAULT_DELAY,
    DELAY_UP,
    FAST_DOWN,
    MARGIN_PER_PERIOD,
    MIN_GAP,
    RETRY_STEP,
    STALL_AFTER_MISSED,
    DeviceCadence,
    UploadPlanner,
    median,
)

FALLBACK = 480.0
P = 600.0
T0 = 1_700_000_000.0
MARGIN = max(DELAY_UP, P * MARGIN_PER_PERIOD)


def cadence(planner: UploadPlanner, device_id: str = "st") -> DeviceCadence:
    return next(c for c in planner.cadences() if c.device_id == device_id)


def learned(delay_seen: float = 5.0) -> UploadPlanner:
    """A planner that saw uploads at T0 - P, T0 and T0 + P, each `delay_seen` s after."""
    planner = UploadPlanner(FALLBACK)
    for k in (-1, 0, 1):
        planner.observe("station", [("st", T0 + k * P)], T0 + k * P + delay_seen, True)
    return planner


def test_fallback_interval_until_a_rhythm_is_known() -> None:
    planner = UploadPlanner(FALLBACK)
    assert planner.next_call() is None

    planner.observe("station", [("st", T0)], T0 + 100, True)

    assert planner.next_call() == T0 + 100 + FALLBACK
    assert cadence(planner).state == "learning"


def test_device_without_last_status_store_stays_on_the_fallback_interval() -> None:
    planner = UploadPlanner(FALLBACK)
    for n in range(3):
        planner.observe("station", [("st", None)], T0 + n * FALLBACK, True)
    assert planner.next_call() == T0 + 3 * FALLBACK
    assert cadence(planner).period is None


def test_one_gap_is_not_a_rhythm_yet_for_it_may_span_a_missed_upload() -> None:
    planner = UploadPlanner(FALLBACK)
    planner.observe("station", [("st", T0 - 2 * P)], T0 - 2 * P + 5, True)
    planner.observe("station", [("st", T0)], T0 + 5, True)  # a missed upload between
    assert cadence(planner).state == "learning"
    assert planner.next_call() == T0 + 5 + FALLBACK

    planner.observe("station", [("st", T0 + P)], T0 + P + 5, True)
    assert cadence(planner).period == P  # the shorter gap, not twice the period


def test_three_uploads_teach_the_period_and_plan_just_after_the_next_one() -> None:
    planner = learned(delay_seen=5.0)

    c = cadence(planner)
    assert (c.state, c.period, c.last_upload) == ("aligned", P, T0 + P)
    assert c.delay == 5.0  # the smallest delay seen while learning, below the default
    assert planner.next_call() == T0 + 2 * P + 5.0


def test_delay_starts_at_the_default_when_seen_late() -> None:
    planner = learned(delay_seen=200.0)
    assert cadence(planner).delay == DEFAULT_DELAY


@pytest.mark.parametrize(("gap", "expected_period"), [
    (2 * P, P),       # a missed upload counts as two periods
    (3 * P + 2, P),   # with a little drift
    (P, P),
])
def test_gaps_spanning_missed_uploads_do_not_stretch_the_period(
        gap: float, expected_period: float) -> None:
    planner = learned()
    last = T0 + P
    for _ in range(4):
        last += gap
        planner.observe("station", [("st", last)], last + 5, True)
    assert cadence(planner).period == pytest.approx(expected_period, abs=1)


def test_not_there_yet_retries_soon_then_waits_for_the_next_upload_without_a_burst() -> None:
    planner = learned()
    first_try = T0 + 2 * P + 5.0
    calls = [first_try]
    while len(calls) < 10:
        planner.observe("station", [("st", T0 + P)], calls[-1], True)
        calls.append(planner.next_call() or 0.0)
        if calls[-1] > first_try + P / 2:
            break

    retries = calls[1:-1]
    assert retries == [first_try + RETRY_STEP]
    assert calls[-1] == T0 + 3 * P + 5.0  # the next upload of the rhythm
    assert cadence(planner).state == "aligned"


def test_found_on_a_retry_the_delay_grows_past_the_failed_try() -> None:
    planner = learned()
    first_try = T0 + 2 * P + 5.0
    planner.observe("station", [("st", T0 + P)], first_try, True)
    assert cadence(planner).state == "retrying"

    planner.observe("station", [("st", T0 + 2 * P)], first_try + RETRY_STEP, True)

    assert cadence(planner).delay == 5.0 + MARGIN
    assert planner.next_call() == T0 + 3 * P + 5.0 + MARGIN


def first_tries(planner: UploadPlanner, uploads: range) -> list[float]:
    """Each upload found at the planned call; the delay after each."""
    delays = []
    for k in uploads:
        planner.observe("station", [("st", T0 + k * P)], planner.next_call() or 0.0, True)
        delays.append(cadence(planner).delay)
    return delays


def test_found_at_the_first_try_the_delay_comes_down_fast_then_creeps() -> None:
    planner = learned(delay_seen=8.0)
    assert first_tries(planner, range(2, 5)) == pytest.approx([8 - FAST_DOWN * n
                                                               for n in (1, 2, 3)])

    late = learned(delay_seen=8.0)
    first_try = T0 + 2 * P + 8.0
    late.observe("station", [("st", T0 + P)], first_try, True)  # too early: seen 8.0 late
    late.observe("station", [("st", T0 + 2 * P)], first_try + RETRY_STEP, True)
    assert cadence(late).delay == 8.0 + MARGIN

    delays = first_tries(late, range(3, 7))
    steps = [a - b for a, b in itertools.pairwise([8.0 + MARGIN, *delays])]
    assert all(0 < step < FAST_DOWN for step in steps)  # near a delay seen lately: creep
    assert steps == sorted(steps)  # faster while it keeps working


def test_uploads_that_stop_fall_back_to_the_interval_and_resume_on_the_rhythm() -> None:
    planner = learned()
    now = T0 + 2 * P + 5.0
    calls = []
    while now < T0 + P + 3600:  # an hour without uploads
        planner.observe("station", [("st", T0 + P)], now, True)
        calls.append(now)
        now = planner.next_call() or 0.0

    assert cadence(planner).state == "stalled"
    assert calls[:2] == [T0 + 2 * P + 5, T0 + 2 * P + 5 + RETRY_STEP]  # a try and a retry
    assert calls[2:4] == [T0 + 3 * P + 5, T0 + 4 * P + 5]  # then one try per upload
    stalled = calls[STALL_AFTER_MISSED:]
    assert {round(b - a) for a, b in itertools.pairwise(stalled)} == {FALLBACK}
    assert len(calls) <= 8  # about the 7.5 an hour of fixed polling, no burst

    resumed = T0 + P + 3600 + 17.0  # uploads resume on a new phase
    planner.observe("station", [("st", resumed)], now, True)
    c = cadence(planner)
    assert (c.state, c.period) == ("aligned", P)
    assert planner.next_call() == resumed + P + c.delay


def test_a_call_for_another_device_does_not_count_as_a_try() -> None:
    planner = learned()
    planner.observe("station", [("st", T0 + P)], T0 + P + 100, True)
    assert cadence(planner).state == "aligned"
    assert planner.next_call() == T0 + 2 * P + 5.0


def test_a_late_call_that_finds_nothing_gives_the_upload_up_rather_than_retrying() -> None:
    planner = learned()
    late = T0 + 2 * P + 300  # long after the planned call (say, after a backoff)
    planner.observe("station", [("st", T0 + P)], late, True)
    assert planner.next_call() == T0 + 3 * P + 5.0


def test_the_next_call_is_never_sooner_than_the_minimum_gap() -> None:
    planner = UploadPlanner(FALLBACK)
    planner.observe("station", [("st", T0 - P)], T0 - P + 5, True)
    planner.observe("station", [("st", T0)], T0 + 5, True)
    late = T0 + 2 * P + 30  # upload T0 + 2P is due already but not seen
    planner.observe("station", [("st", T0 + P)], late, True)
    assert planner.next_call() == late + MIN_GAP


def test_due_lists_devices_by_kind_and_a_complete_answer_forgets_removed_devices() -> None:
    planner = UploadPlanner(FALLBACK)
    planner.observe("station", [("a", T0), ("b", T0)], T0, True)
    planner.observe("homecoach", [("c", T0)], T0 + 0.5, True)

    assert planner.due(T0 + FALLBACK) == {"station": ("a", "b"), "homecoach": ("c",)}
    assert planner.due(T0 + FALLBACK - 5) == {}

    planner.observe("station", [("a", T0 + P)], T0 + P, complete=False)
    assert planner.known("station") == ("a", "b")
    planner.observe("station", [("a", T0 + P)], T0 + P, complete=True)
    assert planner.known("station") == ("a",)
    assert planner.known("homecoach") == ("c",)


@given(st.lists(st.floats(min_value=1.0, max_value=1e6), min_size=1, max_size=9))
def test_the_median_of_periods_is_the_standard_librarys(values: list[float]) -> None:
    assert median(values) == statistics.median(values)
