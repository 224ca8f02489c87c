"""The WSGI shapes the web edge shares: what an app is, a short plain-text answer, and the
security headers on every answer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from netatmo_exporter.adapters.web.http_policy import SECURITY_HEADERS

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


def with_security_headers(app: WSGIApp, extra: Iterable[tuple[str, str]] = ()) -> WSGIApp:
    """Adds the headers at the WSGI level, so error pages, redirects and `/metrics` carry
    them too; `extra` comes from the web configuration file."""
    added = [*SECURITY_HEADERS, *extra]
    ours = {name.lower() for name, _ in added}

    def secured(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            kept = [(name, value) for name, value in headers if name.lower() not in ours]
            return start_response(status, kept + added, *exc_info)

        return app(environ, start)

    return secured
