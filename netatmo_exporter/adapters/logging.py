"""structlog set-up: logfmt lines for journald by default, JSON on request, never a secret."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from netatmo_exporter.domain.ports import EventLog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR}
REDACTED = "[redacted]"


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
    return logger
