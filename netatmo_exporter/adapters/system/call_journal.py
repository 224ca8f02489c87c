"""The service's Netatmo calls of the last hour, on disk: `<token file>.calls` beside the
token file (in the state directory the package purges), so that the call budget holds across
restarts. Without it, a service that crashed and was restarted every few seconds (systemd's
`Restart=on-failure`) would start each life with an empty budget and could send Netatmo
far more than its 500 calls an hour, which gets an app blocked.

One line per call, `<Unix time> <caller>`, appended when the budget books it. No fsync per
line: a crashed process's writes are in the page cache already; only a power cut loses the
last lines, and the box then restarts far slower than a crash loop. At start, the lines of
the last hour are read back into the budget (`recent`) and the file is rewritten atomically
with those only; while the service runs it is rewritten so every `COMPACT_EVERY` lines, so
that it holds about an hour of calls, whatever the uptime. Lines that do not parse, and
times ahead of the clock (a clock set back), are left out. A journal that cannot be read or
written says so once in the log and the service goes on without it."""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path

from netatmo_exporter.adapters.system.atomic_file import write_all, write_atomically
from netatmo_exporter.domain.call_policy import LONG_LIMIT, LONG_WINDOW
from netatmo_exporter.domain.ports import EventLog

MAX_BYTES = 1 << 20
"""At most this much of the file's end is read at start (an hour of calls at Netatmo's
limit is about 12 KB)."""
COMPACT_EVERY = 2 * LONG_LIMIT
AHEAD = 60.0
"""A line up to this far ahead of the clock still counts (two processes' clocks)."""
_CALLER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_")


def calls_path(token_file: str) -> Path:
    token = Path(token_file)
    return token.with_name(f"{token.name}.calls")


class FileCallJournal:
    """Satisfies `CallJournal`."""

    def __init__(self, path: Path, log: EventLog, window: float = LONG_WINDOW,
                 compact_every: int = COMPACT_EVERY) -> None:
        self.path = path
        self._log = log
        self._window = window
        self._compact_every = compact_every
        self._lock = threading.Lock()
        self._recent: deque[tuple[float, str]] = deque()
        self._fd: int | None = None
        self._since_compaction = 0
        self._failed = False

    def recent(self, now: float) -> list[tuple[float, str]]:
        """The calls of the `window` before `now`, oldest first; the file rewritten with
        those only. Called once, at start."""
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(0, size - MAX_BYTES))
                raw = handle.read(MAX_BYTES)
        except FileNotFoundError:
            raw = b""
        except OSError as exc:
            self._say_once("call_journal_unreadable", exc)
            return []
        calls = sorted(call for line in raw.splitlines()
                       if (call := _parse(line)) is not None
                       and now - self._window < call[0] <= now + AHEAD)
        with self._lock:
            self._recent = deque(calls)
            self._compact_locked()
        return calls

    def record(self, at: float, caller: str) -> None:
        with self._lock:
            self._recent.append((at, caller))
            while self._recent and self._recent[0][0] <= at - self._window:
                self._recent.popleft()
            self._since_compaction += 1
            if self._since_compaction >= self._compact_every:
                self._compact_locked()
                return
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT |
                                       os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                write_all(self._fd, _line(at, caller))
            except OSError as exc:
                self._say_once("call_journal_unwritable", exc)

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _compact_locked(self) -> None:
        self._close_locked()
        self._since_compaction = 0
        try:
            write_atomically(self.path, b"".join(_line(at, caller)
                                                 for at, caller in self._recent))
        except OSError as exc:
            self._say_once("call_journal_unwritable", exc)

    def _close_locked(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _say_once(self, event: str, exc: OSError) -> None:
        if not self._failed:
            self._failed = True
            self._log.warning(event, file=str(self.path), problem=exc.strerror or str(exc),
                              consequence="calls made before a restart are not counted")


def _line(at: float, caller: str) -> bytes:
    return f"{at:.3f} {caller}\n".encode()


def _parse(line: bytes) -> tuple[float, str] | None:
    parts = line.split()
    if len(parts) != 2 or not 0 < len(parts[1]) <= 32:
        return None
    try:
        at, caller = float(parts[0]), parts[1].decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    if at != at or not set(caller) <= _CALLER_CHARS:  # NaN
        return None
    return at, caller
