"""The DNS-rebinding check: which Host names the pages answer to."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from netatmo_exporter.adapters.web.http_policy import parse_host


class HostPolicy:
    """Which Host names the pages answer to: a DNS-rebinding page comes with its own name,
    while an IP literal, localhost, the external URL's host, this machine's own name and
    the names the operator listed cannot be pointed at us by someone else's DNS."""

    def __init__(self, external_host: str, allowed: Iterable[str], own_names: Iterable[str]
                 ) -> None:
        hosts = (parse_host(name) for name in (external_host, "localhost", *allowed, *own_names))
        self.names = tuple(dict.fromkeys(host.name for host in hosts if host is not None))
        self._names = frozenset(self.names)

    def allows(self, host_header: str) -> bool:
        host = parse_host(host_header)
        if host is None:
            return False
        name = host.name
        if name in self._names or (name.endswith(".localhost") and _dns_name(name)):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _dns_name(name: str) -> bool:
    """Letters, digits and inner hyphens in labels of 1 to 63, 253 at most in all (RFC
    1123): `app.localhost`, not `evil.com#.localhost`."""
    return len(name) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in name.split("."))
