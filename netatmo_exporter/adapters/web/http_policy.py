"""The exporter's HTTP policy in one place, for every layer to derive from.

ROUTES is the one table of what the exporter answers. From it come bottle's routes (in
web_app), the paths kept outside bottle (`/metrics`, in http_server's dispatcher), the
requests that may carry a body and how large (http_server's parser), the paths answered
whatever the Host (the DNS-rebinding check) and those answered without a password (basic
authentication). Beside it: the one reading of a Host header and the one list of
security headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_FORM_BYTES = 8192


@dataclass(frozen=True)
class Route:
    """One page or endpoint. HEAD is answered wherever GET is."""

    method: str
    path: str
    name: str  # the handler's key, as each page module hands its handlers over
    body_limit: int = 0  # bytes of body it takes; any other request's body is refused
    # Answered under any Host: Prometheus scrapes by whatever name its operator
    # configured, and none of these shows a reading, a place or the token file.
    any_host: bool = False
    authenticated: bool = True  # behind basic auth when the web configuration names users
    debug: bool = False  # served only with the debug handlers switched on
    outside_bottle: bool = False  # a plain WSGI app, outside bottle's hooks and error pages


ROUTES = (
    Route("GET", "/", "status"),
    Route("GET", "/auth/authorize", "authorize"),
    Route("GET", "/auth/callback", "callback"),
    Route("POST", "/auth/settoken", "set_token", body_limit=MAX_FORM_BYTES),
    Route("GET", "/metrics", "metrics", any_host=True, outside_bottle=True),
    Route("GET", "/static/style.css", "stylesheet", any_host=True),
    Route("GET", "/version", "version", any_host=True),
    Route("GET", "/-/healthy", "healthy", any_host=True, authenticated=False),
    Route("GET", "/-/ready", "ready", any_host=True),
    Route("GET", "/debug/data", "debug_data", debug=True),
    Route("GET", "/debug/token", "debug_token", debug=True),
)
BODY_LIMITS = {(route.method, route.path): route.body_limit
               for route in ROUTES if route.body_limit}
MAX_BODY_BYTES = max(BODY_LIMITS.values())
ANY_HOST_PATHS = frozenset(route.path for route in ROUTES if route.any_host)
UNAUTHENTICATED_PATHS = frozenset(route.path for route in ROUTES if not route.authenticated)

# Every answer carries them, the server's own protocol errors included.
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)

_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class Host:
    """A Host header or a URL's authority, read one way everywhere: the name in lower
    case without brackets or a trailing dot, and the port when one was given."""

    name: str
    port: int | None

    def port_for(self, scheme: str) -> int:
        if self.port is not None:
            return self.port
        return 443 if scheme == "https" else 80

    @property
    def netloc(self) -> str:
        return authority(self.name, self.port)


def parse_host(value: str) -> Host | None:
    """`name[:port]` or `[address][:port]`; None for anything else."""
    text = value.strip().lower()
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = text.partition(":")
    name = name.rstrip(".")
    if not name or (port and not _PORT.fullmatch(port)):
        return None
    return Host(name, int(port) if port else None)


@dataclass(frozen=True)
class Origin:
    """Where a page came from (an Origin header or a URL): scheme and host."""

    scheme: str
    host: Host

    def same_as(self, other: Origin) -> bool:
        return self.scheme == other.scheme and self.same_authority(other)

    def same_authority(self, other: Origin) -> bool:
        """The same name and port, each port defaulted by its own scheme (a proxy may
        take https and pass http on)."""
        return (self.host.name == other.host.name
                and self.host.port_for(self.scheme) == other.host.port_for(other.scheme))


def parse_origin(url: str) -> Origin | None:
    """The origin of `scheme://authority/...`; user information is left out."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    host = parse_host(parts.netloc.rpartition("@")[2])
    if parts.scheme.lower() not in ("http", "https") or host is None:
        return None
    return Origin(parts.scheme.lower(), host)


def authority(host: str, port: int | str | None = None) -> str:
    """`host:port` (or the host alone without a port), an IPv6 literal in brackets (RFC
    3986 3.2.2)."""
    name = f"[{host}]" if ":" in host else host
    return name if port is None else f"{name}:{port}"


def http_url(host: str, port: int | str) -> str:
    """`http://host:port`, an IPv6 literal in brackets."""
    return f"http://{authority(host, port)}"
