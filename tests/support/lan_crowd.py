"""An unfriendly LAN host holding connections open: idle ones and slow-header ones."""

from __future__ import annotations

import errno
import selectors
import socket
import time

# The LAN host that attacks, and the Prometheus that scrapes: distinct loopback addresses,
# as the exporter tells clients apart by address.
ATTACKER = "127.0.0.2"
PROMETHEUS = "127.0.0.3"


class LanCrowd:
    """Connections held open from this host: idle ones and ones trickling header bytes.
    The server drops each at its request deadline; the crowd reconnects at once."""

    def __init__(self, port: int, idle: int, slow: int, source: str = ATTACKER,
                 host: str = "127.0.0.1", kept: int = 0) -> None:
        self.port = port
        self.source = source
        self.host = host
        self.selector = selectors.DefaultSelector()
        self.reconnects = 0
        for kind, count in (("idle", idle), ("slow", slow), ("kept", kept)):
            for _ in range(count):
                self._open(kind)

    def _open(self, kind: str) -> None:
        """Connect without waiting, as a hostile host would: a connection the server has
        not accepted yet still counts as held."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((self.source, 0))
        result = sock.connect_ex((self.host, self.port))
        if result not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(result, f"cannot connect from {self.source}")
        self.selector.register(sock, selectors.EVENT_READ, [kind, 0])

    def tend(self, seconds: float) -> None:
        """For `seconds`: reopen what the server closed; slow ones send a byte each 2 s;
        kept ones send a whole request when opened and every 30 s, within the server's
        idle timeout, so each stays a kept-alive connection."""
        end = time.monotonic() + seconds
        next_trickle = time.monotonic()
        while (left := end - time.monotonic()) > 0:
            for key, _ in self.selector.select(timeout=min(left, 0.2)):
                try:
                    data = key.fileobj.recv(4096)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:
                    kind = key.data[0]
                    self.selector.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
                    self.reconnects += 1
                    self._open(kind)
            if time.monotonic() >= next_trickle:
                next_trickle += 2.0
                for key in list(self.selector.get_map().values()):
                    if key.data[0] == "kept" and time.monotonic() - key.data[1] >= 30.0:
                        try:
                            key.fileobj.send(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")  # type: ignore[union-attr]
                            key.data[1] = time.monotonic()
                        except OSError:
                            pass
                    if key.data[0] == "slow":
                        request = b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 1000
                        try:
                            key.fileobj.send(request[key.data[1]:key.data[1] + 1])  # type: ignore[union-attr]
                            key.data[1] += 1
                        except OSError:
                            pass

    def count(self) -> int:
        return len(self.selector.get_map())

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()
