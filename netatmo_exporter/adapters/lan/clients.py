"""Who a LAN client is: the address, or the network, its limits are counted for.

The LAN is not trusted, and one hostile host must not be able to lock the others out: not
by holding connections, not by guessing passwords (each guess costs a bcrypt check), not
by pressing the authorization buttons. Every such limit is counted per client address
(`client_key`), a guesser's history per network (`client_network`).
"""

from __future__ import annotations

import ipaddress

MAX_REMEMBERED_CLIENTS = 1024
"""How many clients a per-client limit remembers; the least recently seen are forgotten."""


def client_key(address: str) -> str:
    """The client an address stands for: the IPv4 address, or the IPv6 /64 network (one
    host picks addresses from its /64 at will, privacy addresses among them)."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_network(address: str) -> str:
    """The network a client's address comes from, as far as one party holds it: the IPv4
    address (a LAN gives each host one), or the IPv6 /56 a provider delegates to one home.
    A guesser who rotates addresses within it keeps one history."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 56), strict=False))
    return client_key(address)
