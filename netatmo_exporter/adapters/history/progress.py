"""Backfill progress on stderr: a bar with ETA on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import TextIO

from netatmo_exporter.domain.history.plan import Cursors, Source, TimeRange
from netatmo_exporter.domain.history.when import format_when
from netatmo_exporter.domain.ports import Clock

BAR_WIDTH = 24
SHORT_BAR_WIDTH = 10
LINE_EVERY = 30.0
"""Seconds between plain progress lines (a log should not get a line per call)."""
LONG_WAIT = 60.0
"""A wait this long gets its line even when the run waited for the same limit before."""
SHORTEST_TITLE = 8
PLAN_CHANGE = 0.05
"""A change of the planned calls worth a line, as a share of the plan announced last."""


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def terminal_width(stream: TextIO, env: Mapping[str, str]) -> int:
    """COLUMNS when set (as `shutil.get_terminal_size` reads it), else the width of the
    terminal `stream` writes to, else 80."""
    try:
        columns = int(env.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, io.UnsupportedOperation):
        return 80


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[:room - 1] + "…"


def _bar(share: float | None, width: int) -> str:
    if share is None or width == 0:
        return ""
    filled = round(share * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] "


def status_line(bar: str, counts: str, span: str, title: str | None, where: str,
                eta: str) -> str:
    place = "" if title is None else f" ({title} at {where})"
    return f"{bar}{counts}{span}{place}{eta}"


def fit_status(width: int, share: float | None, counts: str, span: str, title: str,
               where: str, eta: str) -> str:
    """The progress line in fewer than `width` columns (a line as wide as the terminal
    wraps, and "\\r" then redraws only its last row), with a bar of `share` unless None.
    The ETA is never cut: the range goes first, then the bar shortens, then the title;
    then the place in the range and the bar are left out."""
    room = width - 1
    for bar_width, span_part in ((BAR_WIDTH, span), (BAR_WIDTH, ""), (SHORT_BAR_WIDTH, "")):
        full = status_line(_bar(share, bar_width), counts, span_part, title, where, eta)
        if len(full) <= room:
            return full
    bar = _bar(share, SHORT_BAR_WIDTH)
    spare = room - len(status_line(bar, counts, "", "", where, eta))
    if spare >= SHORTEST_TITLE:
        return status_line(bar, counts, "", _cut(title, spare), where, eta)
    for bar_width in (SHORT_BAR_WIDTH, 0):
        line = status_line(_bar(share, bar_width), counts, "", None, where, eta)
        if len(line) <= room:
            return line
    left = room - len(eta)
    return _cut(counts, left) + eta if left >= SHORTEST_TITLE else eta.strip()[:room]


class Progress:
    """Satisfies `ProgressReport`; also says why the run waits and why its plan changed."""

    def __init__(self, stream: TextIO, span: TimeRange, cursors: Cursors, clock: Clock,
                 tty: bool, width: int | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self._stream = stream
        self._width = width
        self._env = os.environ if env is None else env
        self._span = span
        self._clock = clock
        self._tty = tty
        self._started = clock.now()
        self._first_calls = cursors.calls
        self._planned = cursors.calls + cursors.remaining_pages(span)
        self._last_line = -LINE_EVERY
        self._drawn = False
        self._bar = ""
        self._waited_for = ""

    def line(self, text: str) -> None:
        """A line of its own, above the bar (drawn again below it)."""
        self._clear()
        self._stream.write(text + "\n")
        if self._bar:
            self._draw()
        self._stream.flush()

    def waiting(self, seconds: float, why: str) -> None:
        """One line per wait episode: the first wait for a limit, not each following one
        (pacing at a limit waits before every call), unless the wait is long."""
        if seconds < 1.0 or (why == self._waited_for and seconds < LONG_WAIT):
            return
        self._waited_for = why
        self.line(f"waiting {_duration(seconds)} for {why}")

    def page_done(self, source: Source, cursors: Cursors) -> None:
        now = self._clock.now()
        self._plan_changed(source, cursors)
        if not self._tty and now - self._last_line < LINE_EVERY and not self._finished(cursors):
            return
        self._last_line = now
        share, *parts = self._parts(source, cursors, now)
        if self._tty:
            width = self._width or terminal_width(self._stream, self._env)
            self._bar = fit_status(width, share, *parts)
            self._draw()
        else:
            self._stream.write(status_line("", *parts) + "\n")
        self._stream.flush()

    def skipped(self, source: Source, reason: str) -> None:
        self.line(f"skipped {source.title}: {reason}")

    def finish(self) -> None:
        self._clear()
        self._bar = ""

    def _plan_changed(self, source: Source, cursors: Cursors) -> None:
        planned = cursors.calls + cursors.remaining_pages(self._span)
        if abs(planned - self._planned) <= max(1, self._planned * PLAN_CHANGE):
            return
        if cursors.begins.get(source.key) is None:
            why = f"the history of {source.title} ended before the range did"
        elif planned < self._planned:
            why = f"{source.title} kept fewer readings than one every 5 minutes (a gap)"
        else:
            why = f"{source.title} kept more readings than one every 5 minutes"
        self.line(f"planned {self._planned} calls, now {planned}: {why}")
        self._planned = planned

    def _draw(self) -> None:
        self._stream.write("\r\x1b[2K" + self._bar)
        self._drawn = True

    def _parts(self, source: Source, cursors: Cursors,
               now: float) -> tuple[float, str, str, str, str, str]:
        done = cursors.calls
        left = cursors.remaining_pages(self._span)
        share = cursors.covered(self._span)
        run_calls = done - self._first_calls
        elapsed = now - self._started
        eta = "" if not run_calls or not left else (
            f" ETA {_duration(elapsed / run_calls * left)}")
        span = (f" of {format_when(self._span.begin)[:10]}.."
                f"{format_when(self._span.end)[:10]}")
        where = format_when(cursors.begins[source.key] or self._span.end)[:10]
        return (share, f"{done}/{done + left} calls, {share:.0%}", span, source.title, where,
                eta)

    def _finished(self, cursors: Cursors) -> bool:
        return all(begin is None for begin in cursors.begins.values())

    def _clear(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[2K")
            self._drawn = False
