"""Run the simulated Netatmo cloud in the foreground.

Prints the base URL on the first stdout line and, with ``--print-refresh-token``, a
freshly minted refresh token on the second; stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from .accounts import (
    demo_account,
    empty_account,
    large_account,
    quirks_account,
    ten_module_account,
)
from .cadence import Cadence
from .cloud import FakeNetatmoCloud, scaled_rate_limits

ACCOUNTS = {"demo": demo_account, "empty": empty_account, "large": large_account,
            "quirks": quirks_account, "ten-modules": ten_module_account}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m netatmo_exporter.simulator",
        description="Simulated Netatmo cloud on loopback, for tests and the demo.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument("--client-id", default="cid")
    parser.add_argument("--client-secret", default="csecret")
    parser.add_argument("--token-lifetime", type=float, default=10800.0, help="seconds")
    parser.add_argument("--auto-consent", action="store_true", help="skip the consent page")
    parser.add_argument("--account", choices=sorted(ACCOUNTS), default="demo")
    parser.add_argument("--frozen", action="store_true", help="constant sensor values")
    parser.add_argument(
        "--cadence", type=float, default=0.0, metavar="SECONDS",
        help="devices upload every SECONDS on their own phase, each upload visible 3-7 s "
             "after its last_status_store, one in 30 missed (default: data of the moment)",
    )
    parser.add_argument(
        "--rate-limits", action="store_true", help="enforce 50 requests/10 s and 500/hour"
    )
    parser.add_argument(
        "--rate-limit-speedup", type=float, default=1.0, metavar="FACTOR",
        help="with --rate-limits, windows FACTOR times shorter (60: 500 calls per minute)",
    )
    parser.add_argument("--app-name", default="netatmo-exporter")
    parser.add_argument(
        "--print-refresh-token",
        action="store_true",
        help="print a minted refresh token on the second stdout line",
    )
    return parser.parse_args(argv)


def serve_until_signalled(cloud: FakeNetatmoCloud,
                          announce: Callable[[FakeNetatmoCloud], str]) -> int:
    """Starts `cloud`, writes what `announce` says of it to stdout, serves until SIGTERM or
    SIGINT; 2 when it cannot start."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        cloud.start()
    except (OSError, ValueError) as error:
        print(f"cannot start the simulated Netatmo cloud: {error}", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(announce(cloud))
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        cloud.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    account = ACCOUNTS[args.account]()
    if args.frozen:
        account = account.frozen_copy()
    if args.cadence > 0:
        account = account.with_cadence(Cadence(args.cadence))
    cloud = FakeNetatmoCloud(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
        account=account,
        host=args.host,
        port=args.port,
        auto_consent=args.auto_consent,
        app_name=args.app_name,
        rate_limits=scaled_rate_limits(args.rate_limit_speedup) if args.rate_limits else (),
    )

    def announce(cloud: FakeNetatmoCloud) -> str:
        lines = [cloud.base_url]
        if args.print_refresh_token:
            lines.append(cloud.mint_refresh_token())
        return "\n".join(lines) + "\n"

    return serve_until_signalled(cloud, announce)


if __name__ == "__main__":
    sys.exit(main())
