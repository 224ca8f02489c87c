"""Moments as the backfill's command line gives them (`--from`, `--to`) and as its messages
and the follower's show them: RFC 3339 dates and date-times, or a Go duration ago."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from netatmo_exporter.domain.durations import parse_duration

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?")


class WhenError(ValueError):
    """A moment the command line gives that is not one; the message is one line for the
    user."""


def parse_when(text: str, now: float, flag: str) -> float:
    """RFC 3339 date (midnight UTC) or date-time (UTC without an offset), or a Go duration
    meaning that long before `now`; returns Unix seconds."""
    value = text.strip()
    try:
        if _DATE.fullmatch(value):
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        if _DATE_TIME.fullmatch(value):
            return _date_time(value)
        seconds = parse_duration(value)
    except ValueError:
        raise WhenError(f"{flag}: {text!r} is neither an RFC 3339 date or date-time "
                        "(2025-01-01, 2025-01-01T06:00:00Z) nor a Go duration (720h)") from None
    if seconds < 0:
        raise WhenError(f"{flag}: {text!r} is negative; a duration means that long ago")
    return now - seconds


def _date_time(value: str) -> float:
    value = value.replace("t", "T").replace(" ", "T").replace("z", "Z")
    fraction = ""
    match = re.search(r"\.(\d+)", value)
    if match:  # datetime takes microseconds at most; Netatmo's times are whole seconds
        fraction = match.group(1)
        value = value[:match.start()] + value[match.end():]
    offset = UTC
    if value.endswith("Z"):
        value = value[:-1]
    elif re.search(r"[+-]\d{2}:\d{2}$", value):
        sign = 1 if value[-6] == "+" else -1
        offset = timezone(sign * timedelta(hours=int(value[-5:-3]), minutes=int(value[-2:])))
        value = value[:-6]
    shape = "%Y-%m-%dT%H:%M:%S" if value.count(":") == 2 else "%Y-%m-%dT%H:%M"
    moment = datetime.strptime(value, shape).replace(tzinfo=offset)
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def format_when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
