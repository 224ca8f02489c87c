"""The exporter's own pages, on bottle: status, version and health endpoints."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass

import bottle

from netatmo_exporter import __version__
from netatmo_exporter.domain.authorization import TokenManager
from netatmo_exporter.domain.ports import Clock
from netatmo_exporter.domain.refresher import Refresher

COMMIT = "unknown"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class WebContext:
    tokens: TokenManager
    refresher: Refresher
    clock: Clock
    external_url: str
    client_id: str
    scopes: tuple[str, ...]
    api_url: str
    debug_handlers: bool
    version: str = __version__
    commit: str = COMMIT

    @property
    def redirect_uri(self) -> str:
        return self.external_url.rstrip("/") + "/auth/callback"


def build_web_app(ctx: WebContext) -> bottle.Bottle:
    app = bottle.Bottle()
    app.config["autojson"] = False

    def _security_headers() -> None:
        for name, value in SECURITY_HEADERS.items():
            bottle.response.set_header(name, value)

    app.add_hook("after_request", _security_headers)

    app.route("/", "GET", _status_page(ctx))
    app.route("/version", "GET", _version(ctx))
    app.route("/-/healthy", "GET", _text("OK\n"))
    app.route("/-/ready", "GET", _ready(ctx))
    return app


def _status_page(ctx: WebContext) -> Callable[[], str]:
    def page() -> str:
        status = ctx.tokens.status()
        refresh = ctx.refresher.status
        if ctx.tokens.authorized:
            headline = "Authorized: the exporter reads your Netatmo data."
        else:
            headline = "Not authorized yet: authorize the exporter to read your Netatmo data."
        lines = [
            f"<p>State: {html.escape(status.state.value)}</p>",
            "<p>Last refresh: "
            f"{'ok' if refresh.ok else html.escape(refresh.error_message or 'none yet')}</p>",
        ]
        if status.token_file_problem:
            lines.append(f"<p>Token file problem: {html.escape(status.token_file_problem)}</p>")
        bottle.response.content_type = "text/html; charset=utf-8"
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            "<title>netatmo-exporter</title></head><body>"
            f"<h1>netatmo-exporter</h1><p id=auth-state>{html.escape(headline)}</p>"
            + "".join(lines)
            + "<p><a href='/metrics'>/metrics</a> · <a href='/version'>/version</a></p>"
            "</body></html>"
        )

    return page


def _version(ctx: WebContext) -> Callable[[], str]:
    def version() -> str:
        bottle.response.content_type = "application/json"
        return json.dumps({"version": ctx.version, "commit": ctx.commit})

    return version


def _text(body: str) -> Callable[[], str]:
    def answer() -> str:
        bottle.response.content_type = "text/plain; charset=utf-8"
        return body

    return answer


def _ready(ctx: WebContext) -> Callable[[], str]:
    def ready() -> str:
        bottle.response.content_type = "text/plain; charset=utf-8"
        if ctx.refresher.snapshot is None:
            bottle.response.status = 503
            return "not ready: no data from Netatmo yet\n"
        return "OK\n"

    return ready
