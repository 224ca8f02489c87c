"""The WSGI shapes the web edge shares: what an app is, and a short plain-text answer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PLAIN_TEXT = "text/plain; charset=utf-8"


def plain_answer(start_response: Callable[..., Any], status: str, text: str = "",
                 headers: Iterable[tuple[str, str]] = (), exc_info: Any = None
                 ) -> list[bytes]:
    """Answers `status` with `text` (the status itself by default) and a newline as plain
    text, its length given, and `headers` after."""
    body = f"{text or status}\n".encode()
    start_response(status, [("Content-Type", PLAIN_TEXT), ("Content-Length", str(len(body))),
                            *headers], *(() if exc_info is None else (exc_info,)))
    return [body]
