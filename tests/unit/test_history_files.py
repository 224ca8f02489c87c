"""getmeasure answers parsed, lines written under the live families, spools and resume."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from netatmo_exporter.adapters.history.output import (
    check_labels,
    family_header,
    family_of,
    live_series,
    sample_lines,
    series_prefix,
)
from netatmo_exporter.adapters.history.spool import Spool, work_dir_for
from netatmo_exporter.adapters.netatmo.measure_payload import parse_measure
from netatmo_exporter.domain.energy.model import HomeSetup, RoomSetup
from netatmo_exporter.domain.errors import BadResponse
from netatmo_exporter.domain.history.plan import (
    Cursors,
    HistoryError,
    Plan,
    Series,
    TimeRange,
    plan_history,
)
from netatmo_exporter.domain.weather.model import Module, Station


def test_runs_of_the_optimized_shape_become_rows() -> None:
    answer = {"status": "ok", "body": [
        {"beg_time": 1000, "step_time": 300, "value": [[20.5, 40], [20.7, None]]},
        {"beg_time": 2000, "value": [[21, 41]]},
    ]}
    assert parse_measure(answer, "getmeasure", 2) == (
        (1000, (20.5, 40)), (1300, (20.7, None)), (2000, (21, 41)))


def test_the_keyed_shape_becomes_rows_in_time_order() -> None:
    answer = {"body": {"1300": [20.7, None], "1000": [20.5, 40]}}
    assert parse_measure(answer, "getmeasure", 2) == ((1000, (20.5, 40)), (1300, (20.7, None)))


def test_an_empty_range_answers_no_rows() -> None:
    assert parse_measure({"body": []}, "getmeasure", 1) == ()
    assert parse_measure({"body": {}}, "getroommeasure", 1) == ()


@pytest.mark.parametrize("answer", [
    [], {"status": "ok"}, {"body": "x"}, {"body": [{"beg_time": 1, "value": [[1], [2]]}]},
    {"body": [{"beg_time": "x", "step_time": 1, "value": [[1]]}]},
    {"body": {"1000": [1, 2]}}, {"body": {"soon": [1]}}, {"body": {"1000": ["warm"]}},
    {"body": [{"beg_time": 1, "step_time": -5, "value": [[1]]}]},
])
def test_a_malformed_answer_is_a_clear_error(answer: object) -> None:
    with pytest.raises(BadResponse, match=r"^Netatmo getmeasure: the answer "):
        parse_measure(answer, "getmeasure", 1)


def _plan() -> Plan:
    station = Station("70:ee", "station", Module("70:ee", "NAMain", "Salon"), name="Maison",
                      home_name='Home "1"', modules=(Module("05", "NAModule2", "Vent"),))
    homes = [HomeSetup("h1", "Maison", rooms=(RoomSetup("r1", "Séjour", module_ids=("v",)),))]
    return plan_history([station], homes)


def test_series_go_to_the_live_families_converted_as_they_convert() -> None:
    series = {s.key.split("-", 1)[1] + s.key[0]: s for s in _plan().series}
    gust = family_of(series["guststrengthm"])
    assert gust.name == "netatmo_sensor_gust_strength_meters_per_second"
    assert gust.convert(36) == pytest.approx(10.0)
    wind = family_of(series["windstrengthm"])
    assert (wind.name, wind.convert(36)) == ("netatmo_sensor_wind_strength_kph", 36)
    assert family_of(series["temperaturem"]).name == "netatmo_sensor_temperature_celsius"
    assert family_of(series["pressurem"]).name == "netatmo_sensor_pressure_mb"
    assert family_of(series["temperaturer"]).name == "netatmo_room_temperature_celsius"
    assert family_of(series["sp_temperaturer"]).name == (
        "netatmo_room_setpoint_temperature_celsius")


def test_sample_lines_in_both_formats_escape_labels() -> None:
    series = Series("m000-noise", "noise", "noise", (("module", 'a\\b"c\nd'), ("home", "")))
    family, labels = live_series(series, (("job", "netatmo"), ("instance", "")))
    assert labels == (("module", 'a\\b"c\nd'), ("job", "netatmo"))
    prefix = series_prefix(family.name, labels)
    assert prefix == 'netatmo_sensor_noise_db{module="a\\\\b\\"c\\nd",job="netatmo"} '
    samples = [(1000, 42), (1300, 21.25)]
    assert sample_lines("m ", samples, lambda v: v, "openmetrics") == "m 42 1000\nm 21.25 1300\n"
    assert sample_lines("m ", samples, lambda v: v, "prometheus") == (
        "m 42 1000000\nm 21.25 1300000\n")


def test_headers_match_the_live_family() -> None:
    family = family_of(_plan().series[0])
    assert family_header(family, "openmetrics") == (
        "# HELP netatmo_sensor_temperature_celsius Temperature measurement in celsius\n"
        "# TYPE netatmo_sensor_temperature_celsius gauge\n")


@pytest.mark.parametrize(("given", "problem"), [
    (["job"], "NAME=VALUE"), (["1x=a"], "NAME=VALUE"), (["__name__=x"], "NAME=VALUE"),
    (["module=x"], "sets module itself"), (["job=a", "job=b"], "given twice"),
])
def test_bad_labels_are_refused(given: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_labels(given)


def test_labels_are_kept_in_order() -> None:
    assert check_labels(["job=netatmo", "instance=box:9210"]) == (
        ("job", "netatmo"), ("instance", "box:9210"))


SPAN = TimeRange(1000, 100_000)
IDENTITY = {"from": "2025-01-01", "to": "", "format": "openmetrics"}


def _spool(tmp_path: Path, output: str = "openmetrics") -> Spool:
    return Spool(work_dir_for(str(tmp_path / "history.om")), output,  # type: ignore[arg-type]
                 (("job", "netatmo"),))


def _started(tmp_path: Path) -> tuple[Plan, Spool, Cursors]:
    plan = _plan()
    spool = _spool(tmp_path)
    cursors = Cursors.start(plan, SPAN)
    spool.start(IDENTITY, plan, SPAN, cursors)
    return plan, spool, cursors


def test_the_output_holds_families_together_each_series_ascending_then_eof(
        tmp_path: Path) -> None:
    plan, spool, cursors = _started(tmp_path)
    by_key = {s.key: s for s in plan.series}
    salon_t, vent_gust, room_t = by_key["m000-temperature"], by_key["m001-guststrength"], \
        by_key["r002-temperature"]
    for page in range(2):
        for series in (salon_t, vent_gust, room_t):
            cursors.spooled[series.key] = spool.append(
                series, [(1000 + page * 600, 18), (1300 + page * 600, 36.0)])
        spool.checkpoint(cursors)
    target = tmp_path / "history.om"
    lines = spool.assemble(plan, cursors, str(target), io.BytesIO())

    text = target.read_text()
    assert lines == 12 and text.endswith("# EOF\n") and text.count("# EOF") == 1
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert families == ["netatmo_sensor_temperature_celsius",
                        "netatmo_sensor_gust_strength_meters_per_second",
                        "netatmo_room_temperature_celsius"]
    gusts = [line for line in text.splitlines() if line.startswith("netatmo_sensor_gust")]
    assert gusts[1] == ('netatmo_sensor_gust_strength_meters_per_second{module="Vent",'
                        'station="Maison",home="Home \\"1\\"",job="netatmo"} 10.0 1300')
    assert [int(line.rsplit(" ", 1)[1]) for line in gusts] == [1000, 1300, 1600, 1900]
    assert 'netatmo_room_temperature_celsius{room="Séjour",home="Maison",job="netatmo"} 18 1000' \
        in text
    assert not spool.directory.exists()


def test_resume_cuts_spools_back_to_the_checkpoint(tmp_path: Path) -> None:
    plan = _plan()
    first = _spool(tmp_path)
    cursors = Cursors.start(plan, SPAN)
    first.start(IDENTITY, plan, SPAN, cursors)
    series = plan.series[0]
    cursors.spooled[series.key] = first.append(series, [(1000, 1.5)])
    cursors.begins[plan.sources[0].key] = 1001
    cursors.recent_calls = [1_000_000.5, 1_000_060.25]
    cursors.skipped = {"m001": "Netatmo getmeasure: API error code 9: Device not found"}
    first.checkpoint(cursors)
    first.append(series, [(1300, 2.5)])  # lost in a crash before its checkpoint
    first.release()

    again = _spool(tmp_path)
    loaded = again.load(IDENTITY)
    assert loaded is not None
    plan_again, span, resumed = loaded
    assert plan_again == plan and span == SPAN
    assert resumed.begins[plan.sources[0].key] == 1001
    assert resumed.recent_calls == [1_000_000.5, 1_000_060.25]
    assert resumed.skipped == cursors.skipped
    assert (again.directory / f"{series.key}.txt").read_text().endswith(" 1.5 1000\n")


def test_another_commands_work_is_not_taken_over(tmp_path: Path) -> None:
    plan = _plan()
    spool = _spool(tmp_path)
    spool.start(IDENTITY, plan, SPAN, Cursors.start(plan, SPAN))
    spool.release()
    with pytest.raises(HistoryError, match="holds the unfinished work of another backfill"):
        _spool(tmp_path).load({**IDENTITY, "from": "720h"})


def test_a_damaged_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.directory.mkdir()
    (spool.directory / "checkpoint.json").write_text(json.dumps({"version": 1}))
    with pytest.raises(HistoryError, match=r"is damaged: delete .* and start again"):
        spool.load(IDENTITY)


def _progress_run(tty: bool, width: int | None = 200, env: dict[str, str] | None = None,
                  plan: Plan | None = None) -> str:
    from netatmo_exporter.adapters.history.progress import Progress
    from tests.unit.fakes import FakeClock

    plan = plan or _plan()
    span = TimeRange(0, 10 * 1024 * 300 - 1)  # ten pages a source
    cursors = Cursors.start(plan, span)
    clock = FakeClock(1_000_000.0)
    stream = io.StringIO()
    progress = Progress(stream, span, cursors, clock, tty, width, env or {})
    source = plan.sources[0]
    for page in range(1, 4):
        clock.advance(10.0)
        cursors.calls += 1
        cursors.begins[source.key] = page * 1024 * 300
        progress.page_done(source, cursors)
    progress.waiting(125.0, "Netatmo's rate limit (code 26)")
    progress.finish()
    return stream.getvalue()


def test_a_terminal_gets_a_bar_with_an_eta_redrawn_in_place() -> None:
    text = _progress_run(tty=True)
    assert text.count("\r\x1b[2K[") == 4 and "3/30 calls" in text and "ETA 4m30s" in text
    assert "waiting 2m05s for Netatmo's rate limit (code 26)\n" in text
    assert text.endswith("\r\x1b[2K")


def test_the_bar_never_wraps_on_a_narrow_terminal() -> None:
    bars = [part for part in _progress_run(tty=True, width=40).split("\r\x1b[2K")
            if part.startswith("[")]
    assert len(bars) == 4 and all(len(bar) <= 39 for bar in bars)


def test_a_log_gets_plain_lines_not_one_per_call() -> None:
    lines = _progress_run(tty=False).splitlines()
    assert lines[0].startswith("1/30 calls, 3% of 1970-01-01..1970-02-05 (Salon (Maison)")
    assert len(lines) == 2 and "\r" not in "".join(lines)  # one in 30 s, not per call
    assert lines[-1] == "waiting 2m05s for Netatmo's rate limit (code 26)"


def _long_titled_plan() -> Plan:
    station = Station("70:ee", "station", Module("70:ee", "NAMain", "Salon du rez-de-chaussée"),
                      name="Maison de campagne (Lyon)", modules=())
    return plan_history([station], [])


def _bars(text: str) -> list[str]:
    return [part for part in text.split("\r\x1b[2K") if part.startswith(("[", "1/", "2/", "3/"))]


@pytest.mark.parametrize(("width", "env"), [(80, {}), (None, {"COLUMNS": "80"}),
                                            (None, {"COLUMNS": "40"})])
def test_the_bar_fits_the_terminal_and_shortens_the_title_never_the_eta(
        width: int | None, env: dict[str, str]) -> None:
    columns = width or int(env["COLUMNS"])
    bars = _bars(_progress_run(tty=True, width=width, env=env, plan=_long_titled_plan()))
    assert len(bars) == 4 and all(len(bar) < columns for bar in bars), bars  # 3 + redrawn
    assert [bar[-10:] for bar in bars] == [" ETA 1m30s", " ETA 1m20s", " ETA 1m10s",
                                           " ETA 1m10s"]
    if columns == 80:  # the range went first, then the bar shortened, then the title
        assert bars[1] == ("[##........] 2/10 calls, 20% (Salon du rez-de-chaussé… at "
                           "1970-01-08) ETA 1m20s")
    else:
        assert bars[1] == "[##........] 2/10 calls, 20% ETA 1m20s"


def test_a_bar_with_room_shows_everything() -> None:
    bars = _bars(_progress_run(tty=True, width=200, plan=_long_titled_plan()))
    assert bars[1] == ("[#####...................] 2/10 calls, 20% of 1970-01-01..1970-02-05 "
                       "(Salon du rez-de-chaussée (Maison de campagne (Lyon)) at 1970-01-08) "
                       "ETA 1m20s")


def test_a_wait_for_the_same_limit_is_said_once_per_episode() -> None:
    from netatmo_exporter.adapters.history.progress import Progress
    from tests.unit.fakes import FakeClock

    plan = _plan()
    span = TimeRange(0, 10 * 1024 * 300 - 1)
    cursors = Cursors.start(plan, span)
    stream = io.StringIO()
    progress = Progress(stream, span, cursors, FakeClock(1_000_000.0), False, 80, {})
    window = "room in the 10-second window (25 calls per 10 s)"
    for _ in range(5):
        progress.waiting(10.0, window)
        cursors.calls += 1
        progress.page_done(plan.sources[0], cursors)
    progress.waiting(300.0, "the backfill's share of the hour (250 calls per hour)")
    progress.waiting(14.0, "the backfill's share of the hour (250 calls per hour)")
    progress.waiting(9.0, window)
    progress.waiting(120.0, "Netatmo's rate limit (code 26)")
    progress.waiting(240.0, "Netatmo's rate limit (code 26)")

    waits = [line for line in stream.getvalue().splitlines() if line.startswith("waiting")]
    assert waits == [f"waiting 10s for {window}",
                     "waiting 5m00s for the backfill's share of the hour (250 calls per hour)",
                     f"waiting 9s for {window}",
                     "waiting 2m00s for Netatmo's rate limit (code 26)",
                     "waiting 4m00s for Netatmo's rate limit (code 26)"]


def test_a_plan_that_changes_during_the_run_says_why() -> None:
    from netatmo_exporter.adapters.history.progress import Progress
    from tests.unit.fakes import FakeClock

    plan = _plan()
    span = TimeRange(0, 10 * 1024 * 300 - 1)  # ten pages a source, three sources
    cursors = Cursors.start(plan, span)
    stream = io.StringIO()
    progress = Progress(stream, span, cursors, FakeClock(1_000_000.0), False, 80, {})
    salon, vent = plan.sources[:2]
    cursors.calls += 1
    cursors.begins[salon.key] = 1024 * 300
    progress.page_done(salon, cursors)  # as planned: no line
    cursors.calls += 1
    cursors.begins[vent.key] = None  # its history ended after one page
    progress.page_done(vent, cursors)

    lines = stream.getvalue().splitlines()
    assert [line for line in lines if line.startswith("planned")] == [
        "planned 30 calls, now 21: the history of Vent (Maison) ended before the range did"]


def test_no_temporary_name_is_fixed_and_no_link_in_the_directory_is_followed(
        tmp_path: Path) -> None:
    """Links only this user could have put there, after the checks of who owns it."""
    plan, spool, cursors = _started(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    (spool.directory / "checkpoint.json.tmp").symlink_to(victim)
    series = plan.series[0]
    (spool.directory / f"{series.key}.txt").symlink_to(victim)

    spool.checkpoint(cursors)
    with pytest.raises(HistoryError, match=r"m000-temperature\.txt is a symbolic link: this "
                                           "run will not follow it"):
        spool.append(series, [(1000, 1.5)])

    assert victim.read_text() == "mine\n"
    assert json.loads((spool.directory / "checkpoint.json").read_text())["version"] == 1
    leftovers = [p.name for p in spool.directory.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == ["checkpoint.json.tmp"]


def test_a_second_spool_on_a_directory_in_use_is_refused(tmp_path: Path) -> None:
    _, first, _ = _started(tmp_path)

    with pytest.raises(HistoryError, match=r"another backfill is running in .*history\.om\."
                                           r"partial \(it holds its lock\)"):
        _spool(tmp_path).load(IDENTITY)
    first.release()
    assert _spool(tmp_path).load(IDENTITY) is not None
