"""`netatmo-exporter simulator`: the simulated Netatmo cloud, for trying an installed
exporter (the Debian service, a venv) without a Netatmo account. Fixed defaults, so the
settings it prints stay right from one start to the next."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Sequence

from netatmo_exporter.adapters.web.http_policy import http_url
from netatmo_exporter.entrypoints.config import ConfigError, parse_addr

PROG = "netatmo-exporter simulator"
DEFAULT_LISTEN = "127.0.0.1:9220"
CLIENT_ID = "simulator-client"
CLIENT_SECRET = "simulator-secret"  # noqa: S105 - the simulator's published secret
UPLOAD_PERIOD = 60.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")
ALL_INTERFACES = ("", "0.0.0.0", "::")


def _listen(value: str) -> tuple[str, int]:
    try:
        host, port = parse_addr(value)
    except ConfigError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not host:port (e.g. {DEFAULT_LISTEN}, 0.0.0.0:9220, [::1]:9220)"
        ) from None
    return host, port


def build_parser() -> argparse.ArgumentParser:
    from netatmo_exporter.simulator.__main__ import ACCOUNTS

    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Run a simulated Netatmo cloud (a realistic account: stations with "
                    "every module type, Home Coaches, a heated home) and point an installed "
                    "exporter at it with the settings printed at start: "
                    "NETATMO_API_URL, NETATMO_CLIENT_ID and NETATMO_CLIENT_SECRET. Its "
                    "consent page needs no Netatmo account. Stop with Ctrl-C.")
    parser.add_argument("--listen", type=_listen, default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help="address to listen on; 0.0.0.0:9220 or :9220 for the LAN (an "
                             "exporter on another machine, or a browser elsewhere)")
    parser.add_argument("--client-id", default=CLIENT_ID, help="the app's client id")
    parser.add_argument("--client-secret", default=CLIENT_SECRET,
                        help="the app's client secret")
    parser.add_argument("--account", choices=sorted(ACCOUNTS), default="demo",
                        help="the simulated account")
    parser.add_argument("--upload-period", type=float, default=UPLOAD_PERIOD,
                        metavar="SECONDS", help="how often each device uploads (Netatmo: "
                                                "about 600)")
    parser.add_argument("--token-lifetime", type=float, default=10800.0, metavar="SECONDS",
                        help="how long an access token lives (Netatmo: 10800)")
    parser.add_argument("--rate-limits", action="store_true",
                        help="enforce Netatmo's 50 calls per 10 s and 500 per hour")
    return parser


def base_url(host: str, port: int) -> str:
    """The URL to give an exporter: this machine's name when listening on every interface."""
    if host in ALL_INTERFACES:
        host = socket.gethostname()
    return http_url(host, port)


def run_simulator(argv: Sequence[str]) -> int:
    from netatmo_exporter.simulator import Cadence, FakeNetatmoCloud, scaled_rate_limits
    from netatmo_exporter.simulator.__main__ import ACCOUNTS, serve_until_signalled

    args = build_parser().parse_args(list(argv))
    host, port = args.listen
    cloud = FakeNetatmoCloud(
        args.client_id, args.client_secret, args.token_lifetime,
        ACCOUNTS[args.account]().with_cadence(Cadence(args.upload_period)),
        host or "0.0.0.0", port, beyond_loopback=host not in LOOPBACK,
        rate_limits=scaled_rate_limits(1.0) if args.rate_limits else ())

    def announce(cloud: FakeNetatmoCloud) -> str:
        url = base_url(host, cloud.port)
        return (f"Simulated Netatmo cloud at {url} (account {args.account!r}); stop with "
                "Ctrl-C.\nPoint an exporter at it with these settings (in "
                "/etc/default/netatmo-exporter, or as flags\n--api-url, --client-id, "
                "--client-secret), then authorize from the exporter's status page:\n\n"
                f"NETATMO_API_URL={url}\nNETATMO_CLIENT_ID={args.client_id}\n"
                f"NETATMO_CLIENT_SECRET={args.client_secret}\n")

    return serve_until_signalled(cloud, announce)
