"""structlog set-up: logfmt lines for journald by default, JSON on request, never a secret."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, MutableMapping
from typing import Any, TextIO

import structlog

from netatmo_exporter.domain.ports import EventLog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR}
REDACTED = "[redacted]"
# A value can come from a request (a Host, a path, a user name): each is cut to this many
# characters, so one request cannot write a 15 KB line. The exporter's own explanations
# (a file problem and its fix) are longer, and come from no request.
MAX_VALUE_CHARS = 200
MAX_OWN_TEXT_CHARS = 1000
OWN_TEXT_KEYS = frozenset({"problem", "hint", "token_file", "moved_to", "address"})


class SecretRedactor:
    """A structlog processor that blanks every registered secret wherever it appears.

    The code never logs token values on purpose; this is the net under that rule, for
    secrets that would reach a line inside an exception message or a library's text.
    """

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, *secrets: str) -> None:
        with self._lock:
            self._secrets = self._secrets | {s for s in secrets if len(s) >= 4}

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def __call__(self, _logger: Any, _name: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in event_dict.items():
            if isinstance(value, str):
                event_dict[key] = self.scrub(value)
            elif value is not None and not isinstance(value, int | float | bool):
                event_dict[key] = self.scrub(str(value))
        return event_dict


def bound_values(_logger: Any, _name: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor cutting long values, marked so a reader knows: it runs after
    the redactor, so a cut never splits a secret the redactor would have recognised."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            limit = MAX_OWN_TEXT_CHARS if key in OWN_TEXT_KEYS else MAX_VALUE_CHARS
            if len(value) > limit:
                event_dict[key] = f"{value[:limit]}…[cut {len(value) - limit} chars]"
    return event_dict


class LibraryLogHandler(logging.Handler):
    """Takes the records of libraries that log through the standard `logging` module
    (waitress) and writes each as one structured line of ours: the message, and the kind
    of exception and where it was raised, never a multi-line traceback."""

    def __init__(self, log: EventLog) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
            if record.exc_info and record.exc_info[1] is not None:
                fields.update(error=type(record.exc_info[1]).__name__,
                              at=raised_at(record.exc_info[1]))
            if record.levelno >= logging.ERROR:
                self._log.error("library_error", **fields)
            elif record.levelno >= logging.WARNING:
                self._log.warning("library_warning", **fields)
            else:
                self._log.info("library_notice", **fields)
        except Exception:  # a logging failure must not end the thread that logged
            self.handleError(record)


def raised_at(exc: BaseException) -> str:
    """`file.py:line` of the innermost frame an exception passed through."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename.rpartition('/')[2]}:{tb.tb_lineno}"


class LogThrottle:
    """Keeps a flood of like events (refused passwords, busy answers) from flooding the
    journal: at most one line per key (say, a client address) per `window` seconds and at
    most `lines` lines per window over all keys. Each line let through says how many were
    held back before it; the metrics count every one."""

    def __init__(self, window: float = 10.0, lines: int = 10, max_keys: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._lines = lines
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._last: OrderedDict[Hashable, float] = OrderedDict()
        self._window_start = -window
        self._in_window = 0
        self._held_back = 0

    def admit(self, key: Hashable) -> int | None:
        """None: hold this line back. Else the number of lines held back since the last
        line let through."""
        now = self._clock()
        with self._lock:
            if now - self._window_start >= self._window:
                self._window_start, self._in_window = now, 0
            last = self._last.get(key)
            if self._in_window >= self._lines or (last is not None and
                                                   now - last < self._window):
                self._held_back += 1
                return None
            self._in_window += 1
            self._last[key] = now
            self._last.move_to_end(key)
            while len(self._last) > self._max_keys:
                self._last.popitem(last=False)
            held_back, self._held_back = self._held_back, 0
            return held_back


_FIRST_KEYS = ("ts", "level", "event")
_BARE = re.compile(r'[^\s="\\\x00-\x1f\x7f-\x9f\u2028\u2029]+')
_UNESCAPED_BY_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def render_logfmt(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> str:
    """`key=value` pairs, `ts level event` first; a value with a space, a quote or a control
    character is quoted and escaped as JSON escapes it (`\\n`, `\\u001b`), so a message
    from Netatmo or from a request can neither forge a log line nor drive a terminal."""
    keys = [key for key in _FIRST_KEYS if key in event_dict]
    keys += [key for key in event_dict if key not in _FIRST_KEYS]
    return " ".join(f"{key}={_logfmt_value(event_dict[key])}" for key in keys)


def _logfmt_value(value: Any) -> str:
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if _BARE.fullmatch(text):
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    return _UNESCAPED_BY_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def configure_logging(level: str, fmt: str, redactor: SecretRedactor,
                      stream: TextIO | None = None) -> EventLog:
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else render_logfmt
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            redactor,
            bound_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    # httpx logs request URLs at INFO from 0.24 on; keep library chatter out of our lines.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # waitress warns "Task queue depth is N" whenever requests wait for a thread, which
    # under an ordinary burst of scrapes would flood the journal.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    logger: EventLog = structlog.get_logger()
    # Without a handler, Python's last-resort one would print waitress's tracebacks raw.
    library = logging.getLogger("waitress")
    for handler in list(library.handlers):
        if isinstance(handler, LibraryLogHandler):
            library.removeHandler(handler)
    library.addHandler(LibraryLogHandler(logger))
    library.setLevel(logging.INFO)
    library.propagate = False
    return logger
