"""systemd's readiness protocol (sd_notify): one datagram to `$NOTIFY_SOCKET`.

With `Type=notify` systemd waits for `READY=1` before it calls the start done, so a
setting that stops the exporter before it listens fails `systemctl start` itself instead
of a unit that looked started. Outside systemd (no `$NOTIFY_SOCKET`) nothing is sent.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping


def notify(message: str, environ: Mapping[str, str]) -> bool:
    """Send `message` (e.g. "READY=1") to the service manager; False when none listens."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    # A leading "@" names a socket in the abstract namespace.
    target = "\0" + address[1:] if address[0] == "@" else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(target)
            sock.sendall(message.encode())
        except OSError:
            return False
    return True
