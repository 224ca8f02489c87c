"""The call journal (adapters/system/call_journal.py) and the budget writing to it: an hour
of calls kept on disk whatever the uptime, a file it cannot write costing one log line and
no call, nothing followed through a link."""

from __future__ import annotations

from pathlib import Path

from netatmo_exporter.adapters.system.call_journal import FileCallJournal
from netatmo_exporter.domain.call_policy import CallBudget
from tests.unit.fakes import FakeLog

NOW = 1_800_000_000.0


def test_the_budget_writes_each_call_it_books_and_not_the_ones_it_is_told_of(
        tmp_path: Path) -> None:
    path = tmp_path / "token.json.calls"
    journal = FileCallJournal(path, FakeLog())
    budget = CallBudget(journal=journal)
    budget.book("weather", [NOW - 100.0])
    assert budget.take("weather", None, NOW) == 0.0
    assert budget.take("energy", None, NOW + 1) == 0.0
    journal.close()
    assert path.read_text() == f"{NOW:.3f} weather\n{NOW + 1:.3f} energy\n"
    assert FileCallJournal(path, FakeLog()).recent(NOW + 2) == [(NOW, "weather"),
                                                                (NOW + 1, "energy")]


def test_the_file_holds_about_an_hour_of_calls_whatever_the_uptime(tmp_path: Path) -> None:
    path = tmp_path / "token.json.calls"
    journal = FileCallJournal(path, FakeLog(), window=100.0, compact_every=50)
    for second in range(2000):  # 20 windows' worth
        journal.record(NOW + second, "weather")
        assert len(path.read_text().splitlines()) <= 100 + 50
    journal.close()
    assert FileCallJournal(path, FakeLog(), window=100.0).recent(NOW + 2000) == [
        (NOW + second, "weather") for second in range(1901, 2000)]
    assert len(path.read_text().splitlines()) == 99  # rewritten at start with those only


def test_lines_that_do_not_parse_or_lie_ahead_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "token.json.calls"
    path.write_bytes(b"\n".join([b"garbage", b"1 2 3", b"nan weather", b"inf weather",
                                 f"{NOW + 3600:.3f} weather".encode(), b"\xff\xfe weather",
                                 f"{NOW - 1:.3f} Weather!".encode(), b"x" * 5000,
                                 f"{NOW - 1:.3f} energy".encode()]) + b"\n")
    assert FileCallJournal(path, FakeLog()).recent(NOW) == [(NOW - 1, "energy")]
    assert path.read_text() == f"{NOW - 1:.3f} energy\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_journal_it_cannot_write_costs_one_line_and_no_call(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    log = FakeLog()
    budget = CallBudget(journal=FileCallJournal(folder / "token.json.calls", log))
    for second in range(5):
        assert budget.take("weather", None, NOW + second) == 0.0
    assert [event for _, event, _ in log.events] == ["call_journal_unwritable"]
    assert log.events[0][2]["problem"] == "No such file or directory"


def test_a_link_in_its_place_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep me\n")
    path = tmp_path / "token.json.calls"
    path.symlink_to(target)
    log = FakeLog()
    journal = FileCallJournal(path, log)
    journal.record(NOW, "weather")
    assert target.read_text() == "keep me\n"
    assert [event for _, event, _ in log.events] == ["call_journal_unwritable"]
    assert journal.recent(NOW + 1) == []  # the next start: the link replaced by a file
    assert not path.is_symlink() and path.read_text() == ""
    assert target.read_text() == "keep me\n"
