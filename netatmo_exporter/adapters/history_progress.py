"""Backfill progress on stderr: a bar with ETA on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
import os
from typing import TextIO

from netatmo_exporter.domain.history import Cursors, Source, TimeRange, format_when
from netatmo_exporter.domain.ports import Clock

BAR_WIDTH = 24
LINE_EVERY = 30.0
"""Seconds between plain progress lines (a log should not get a line per call)."""


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, io.UnsupportedOperation):
        return 80


class Progress:
    """Satisfies `ProgressReport`; also says why the run waits."""

    def __init__(self, stream: TextIO, span: TimeRange, cursors: Cursors, clock: Clock,
                 tty: bool, width: int | None = None) -> None:
        self._stream = stream
        # A bar wider than the terminal wraps, and "\r" then redraws only its last row.
        self._width = width or _terminal_width(stream)
        self._span = span
        self._clock = clock
        self._tty = tty
        self._started = clock.now()
        self._first_calls = cursors.calls
        self._last_line = -LINE_EVERY
        self._drawn = False
        self._bar = ""

    def line(self, text: str) -> None:
        """A line of its own, above the bar (drawn again below it)."""
        self._clear()
        self._stream.write(text + "\n")
        if self._bar:
            self._draw()
        self._stream.flush()

    def waiting(self, seconds: float, why: str) -> None:
        if seconds >= 1.0:
            self.line(f"waiting {_duration(seconds)} for {why}")

    def page_done(self, source: Source, cursors: Cursors) -> None:
        now = self._clock.now()
        if not self._tty and now - self._last_line < LINE_EVERY and not self._finished(cursors):
            return
        self._last_line = now
        text = self._status(source, cursors, now)
        if self._tty:
            self._bar = text[:self._width - 1]
            self._draw()
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def skipped(self, source: Source, reason: str) -> None:
        self.line(f"skipped {source.title}: {reason}")

    def finish(self) -> None:
        self._clear()
        self._bar = ""

    def _draw(self) -> None:
        self._stream.write("\r\x1b[2K" + self._bar)
        self._drawn = True

    def _status(self, source: Source, cursors: Cursors, now: float) -> str:
        done = cursors.calls
        left = cursors.remaining_pages(self._span)
        planned = done + left
        share = cursors.covered(self._span)
        run_calls = done - self._first_calls
        elapsed = now - self._started
        eta = "" if not run_calls or not left else (
            f" ETA {_duration(elapsed / run_calls * left)}")
        where = format_when(cursors.begins[source.key] or self._span.end)[:10]
        filled = round(share * BAR_WIDTH)
        bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] " if self._tty else ""
        return (f"{bar}{done}/{planned} calls, {share:.0%} of "
                f"{format_when(self._span.begin)[:10]}..{format_when(self._span.end)[:10]}"
                f" ({source.title} at {where}){eta}")

    def _finished(self, cursors: Cursors) -> bool:
        return all(begin is None for begin in cursors.begins.values())

    def _clear(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[2K")
            self._drawn = False
