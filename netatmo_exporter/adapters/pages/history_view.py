"""What the status page says about the history follower: the receiver, how far each
module's and room's stored readings are written, and the last error, in plain words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netatmo_exporter.adapters.history.remote_write import shown_url
from netatmo_exporter.adapters.pages.status_view import local_time, relative, span
from netatmo_exporter.domain.history.follower import HistoryState, SourceProgress


@dataclass(frozen=True)
class HistoryLine:
    source: str
    written: str
    behind: str
    error: str
    health: str  # "ok", "behind", "waiting", "error"


def page_values(history: Callable[[], HistoryState] | None, receiver: str, interval: float,
                now: float) -> dict[str, Any]:
    """What history.tpl needs; `history_enabled` False when the follower is off."""
    if history is None:
        return {"history_enabled": False}
    state = history()
    return {
        "history_enabled": True,
        "history_receiver": shown_url(receiver),
        "history_interval": span(interval),
        "history_written": f"{state.samples_written:,}".replace(",", " "),
        "history_last_write": ("" if state.last_write_at is None
                               else relative(state.last_write_at, now)),
        "history_next": ("" if state.next_poll_at is None
                         else relative(state.next_poll_at, now)),
        "history_error": state.last_error or "",
        "history_error_at": ("" if state.last_error_at is None
                             else local_time(state.last_error_at)),
        "history_lines": [_line(source, interval, now) for source in state.sources],
    }


def _line(source: SourceProgress, interval: float, now: float) -> HistoryLine:
    error = source.last_error or ""
    written = ("nothing yet" if source.written_until is None
               else local_time(source.written_until))
    if source.up_to_date is None:
        return HistoryLine(source.title, written, "", error, "error" if error else "waiting")
    behind = now - source.up_to_date
    health = "error" if error else ("behind" if behind > 2 * interval + 900 else "ok")
    return HistoryLine(source.title, written, span(behind), error, health)
