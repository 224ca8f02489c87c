"""`python -m tests.support.loaded_modules HOST:PORT FLAGS...`: the service as
`python -m netatmo_exporter --addr HOST:PORT FLAGS...` runs it, which, once it has served
`/metrics` with `netatmo_up 1` and its status page, prints the name of every module the
process holds (one a line, sorted, between two marker lines; not the imports it refuses)
and stops with SIGTERM. With basic authentication on, `LOADED_MODULES_CREDENTIALS` (as
USER:PASSWORD) signs its requests.

Test-only, and standard library only beside the service, so that it loads nothing the
service would not."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

from netatmo_exporter.entrypoints.cli import main

BEGIN, END = "--- loaded modules ---", "--- end ---"
TIMEOUT = 30.0


def _get(host: str, port: int, path: str) -> bytes:
    """One HTTP/1.0 GET on a raw socket (http.client would load modules of its own)."""
    headers = f"Host: {host}:{port}\r\n"
    if credentials := os.environ.get("LOADED_MODULES_CREDENTIALS"):
        import base64  # the service holds it anyway with basic authentication on

        headers += f"Authorization: Basic {base64.b64encode(credentials.encode()).decode()}\r\n"
    with socket.create_connection((host, port), timeout=5.0) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\n{headers}\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _report_when_served(host: str, port: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            if b"\nnetatmo_up 1.0" in _get(host, port, "/metrics"):
                _get(host, port, "/")
                loaded = sorted(name for name, module in sys.modules.items() if module is not None)
                print("\n".join([BEGIN, *loaded, END]), flush=True)
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        print(f"no netatmo_up 1 within {TIMEOUT:.0f} s", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


def run(argv: list[str]) -> int:
    address, *flags = argv
    host, _, port = address.rpartition(":")
    threading.Thread(target=_report_when_served, args=(host, int(port)), daemon=True).start()
    return main(["--addr", address, *flags])


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
