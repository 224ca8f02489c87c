"""The bottle app: the route table's pages mounted on their handlers, behind the
DNS-rebinding host check, with error pages that echo nothing.

Each page module hands over its handlers by route name; a route of the table without a
handler fails here, when the app is built, not on the first request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import bottle

from netatmo_exporter.adapters.lan.clients import client_key
from netatmo_exporter.adapters.pages.templates import ERROR_STATUSES, Refusal, Templates
from netatmo_exporter.adapters.system.logging import LogThrottle
from netatmo_exporter.adapters.web.host_names import address_towards
from netatmo_exporter.adapters.web.host_policy import HostPolicy
from netatmo_exporter.adapters.web.http_policy import ANY_HOST_PATHS, ROUTES, http_url, parse_host
from netatmo_exporter.adapters.web.wsgi import WSGIApp
from netatmo_exporter.domain.ports import EventLog

ALLOWED_HOSTS_SETTING = "--web.allowed-hosts (NETATMO_EXPORTER_ALLOWED_HOSTS)"


def build_web_app(handlers: Mapping[str, Callable[[], Any]], templates: Templates,
                  host_policy: HostPolicy, log: EventLog | None, *,
                  debug_handlers: bool) -> WSGIApp:
    app = bottle.Bottle(catchall=True)
    app.config["autojson"] = False
    app.add_hook("before_request", _host_check(host_policy, templates, log))
    for route in ROUTES:
        if route.outside_bottle or (route.debug and not debug_handlers):
            continue
        app.route(route.path, route.method, handlers[route.name])
    for status in ERROR_STATUSES:
        app.error(status)(templates.error_page(log))
    wsgi: WSGIApp = app
    return wsgi


def _host_check(policy: HostPolicy, templates: Templates, log: EventLog | None
                ) -> Callable[[], None]:
    """DNS-rebinding defence: a page on another site whose name was re-pointed at this
    address reaches us with its own name in Host; it gets no page that shows data. Its
    log line comes at most once per client address and name in a while."""
    throttle = LogThrottle()

    def check() -> None:
        if bottle.request.path in ANY_HOST_PATHS:
            return
        header = bottle.request.get_header("Host") or ""
        if policy.allows(header):
            return
        host = parse_host(header)
        name = host.name if host is not None else "(none)"
        remote = str(bottle.request.environ.get("REMOTE_ADDR", ""))
        held_back = throttle.admit((client_key(remote), name))
        if log is not None and held_back is not None:
            log.warning("host_refused", host=name, path=bottle.request.path, remote=remote,
                        held_back=held_back)
        by_address = _by_address(bottle.request.environ)
        body = templates.refusal(Refusal(
            421, "Unknown host name",
            f"This exporter does not answer pages for the host name “{name}”, so that a web "
            "page elsewhere cannot read it through a re-pointed name (DNS rebinding). "
            "/metrics answers under any name.",
            f"If {name} is this machine's name on your network, add it to "
            f"{ALLOWED_HOSTS_SETTING}, or open the page by its IP address"
            + (f": {by_address}" if by_address else "") + ".",
            (by_address, "Open the status page by IP address") if by_address else None))
        raise bottle.HTTPResponse(body, status=421,
                                  headers={"Content-Type": "text/html; charset=utf-8"})

    return check


def _by_address(environ: dict[str, Any]) -> str:
    """The status page at the address the refused request came in on (an IP address is
    always answered), on the port the server listens on."""
    address = address_towards(str(environ.get("REMOTE_ADDR", "")))
    port = str(environ.get("SERVER_PORT", ""))
    if address is None or not port.isdigit():
        return ""
    return f"{http_url(address, port)}/"
