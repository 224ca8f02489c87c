"""The names and addresses this machine has on the LAN, as a browser there reaches it.

A home router names the box under its own domain (`nas.fritz.box`, `nas.home.arpa`,
`nas.lan`) and hands that domain out by DHCP, which ends up as the `search` (or `domain`)
line of /etc/resolv.conf. Those names are the owner's own network's, so a DNS-rebinding
page elsewhere cannot come with them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from pathlib import Path

RESOLV_CONF = "/etc/resolv.conf"
# glibc reads at most 6 search domains; a few more cost nothing and cap a strange file.
MAX_DOMAINS = 8
_DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


def search_domains(path: str = RESOLV_CONF) -> tuple[str, ...]:
    """The domains of resolv.conf's `search` and `domain` lines, in order, without
    duplicates; none when the file cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    domains: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] not in ("search", "domain"):
            continue
        for word in words[1:]:
            if word.startswith(("#", ";")):
                break
            name = word.lower().rstrip(".")
            if len(name) <= 253 and _DOMAIN.fullmatch(name) and name not in domains:
                domains.append(name)
    return tuple(domains[:MAX_DOMAINS])


def own_names(hostname: str, domains: Iterable[str]) -> tuple[str, ...]:
    """The machine's name as a LAN browser may type it: alone (`nas`), under `.local`
    (mDNS) and under each search domain (`nas.fritz.box`), plus the name as configured."""
    name = hostname.lower().rstrip(".")
    short = name.split(".")[0]
    if not short:
        return ()
    names = [short, f"{short}.local", *(f"{short}.{domain}" for domain in domains), name]
    return tuple(dict.fromkeys(names))


def address_towards(client: str) -> str | None:
    """This machine's address on the way to `client` (the one a request from there came
    in on), from the routing table: connecting a UDP socket sends nothing."""
    try:
        peer = ipaddress.ip_address(client.split("%")[0])
    except ValueError:
        return None
    family = socket.AF_INET6 if peer.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((str(peer), 9))
            local = ipaddress.ip_address(str(probe.getsockname()[0]).split("%")[0])
    except (OSError, ValueError):
        return None
    if isinstance(local, ipaddress.IPv6Address) and local.ipv4_mapped is not None:
        local = local.ipv4_mapped
    return str(local)
