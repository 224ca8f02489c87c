"""Command line: `netatmo-exporter [flags]` serves; subcommands do the rest."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence

UNUSED_LIBRARY_EXTRAS = ("httpx._main", "rich")
"""Optional imports of our libraries that no command uses, refused before the libraries
load: httpx's command-line client, which httpx 0.23 (bookworm) loads with click, rich and
pygments whenever they are installed (python3-httpx depends on them), and the rich
tracebacks of structlog's console renderer, which we do not use: about 5 MB of the
service's memory. Both libraries carry on without them."""
for _extra in UNUSED_LIBRARY_EXTRAS:
    sys.modules.setdefault(_extra, None)  # type: ignore[arg-type]

from netatmo_exporter.adapters.system.control_socket import (  # noqa: E402
    UnsafeSocketPath,
    socket_path_problem,
)
from netatmo_exporter.adapters.system.file_owner import foreign_in_shared_folder  # noqa: E402
from netatmo_exporter.entrypoints.bootstrap import build_app  # noqa: E402
from netatmo_exporter.entrypoints.config import (  # noqa: E402
    EXIT_BAD_SETTING,
    Config,
    ConfigError,
    build_parser,
    config_from,
    default_control_socket,
    load_config,
    parse_duration,
    resolve,
)

PROG = "netatmo-exporter"
# check-config's 1 means "not configured yet" (a skipped unit).
EXIT_NOT_CONFIGURED = 1


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ if environ is None else environ)
    command = args[0] if args and not args[0].startswith("-") else "serve"
    handlers: dict[str, Callable[[list[str], dict[str, str]], int]] = {
        "serve": serve,
        "flush": flush,
        "check-config": check_config,
        "web-user": web_user,
        "login": login,
        "demo": demo,
        "simulator": simulator,
        "backfill": backfill,
    }
    handler = handlers.get(command)
    if handler is None:
        print(f"{PROG}: unknown command {command!r}; commands: {', '.join(handlers)}",
              file=sys.stderr)
        return 2
    return handler(args[1:] if args and args[0] == command else args, env)


def _config_or_exit(argv: Sequence[str], env: Mapping[str, str]) -> Config | int:
    try:
        return load_config(argv, env)
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING


def serve(argv: list[str], env: dict[str, str]) -> int:
    config = _config_or_exit(argv, env)
    if isinstance(config, int):
        return config
    problem = socket_path_problem(config.control_socket) if config.control_socket else None
    if problem:
        print(f"{PROG}: configuration error: --control-socket {problem}", file=sys.stderr)
        return EXIT_BAD_SETTING
    try:
        app = build_app(config)
    except OSError as exc:
        print(f"{PROG}: cannot listen on {config.host or '*'}:{config.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    try:
        code = app.run_until_signalled(env)
    except UnsafeSocketPath as exc:  # the path changed or is out of reach since the check
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    if app.abandoned:
        # Loops still blocked on Netatmo: ending the interpreter normally would run them
        # into its finalization. The token is on disk; end the process here.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def flush(argv: list[str], env: dict[str, str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} flush",
        description="Ask the running exporter to write its token file durably (for ExecStop=). "
                    "Exits 0 once the write is confirmed or when no exporter runs.")
    parser.add_argument("--control-socket", default=None, metavar="PATH",
                        help="[env NETATMO_EXPORTER_CONTROL_SOCKET; default: "
                             "$RUNTIME_DIRECTORY/control.sock]")
    parser.add_argument("--timeout", default="10s", metavar="DURATION",
                        help="how long to wait for the confirmation (default: 10s)")
    args = parser.parse_args(argv)
    from netatmo_exporter.adapters.system.control_client import request_flush

    path = (args.control_socket or env.get("NETATMO_EXPORTER_CONTROL_SOCKET")
            or default_control_socket(env))
    if not path:
        print(f"{PROG} flush: no control socket: give --control-socket or set "
              "NETATMO_EXPORTER_CONTROL_SOCKET", file=sys.stderr)
        return 2
    try:
        timeout = parse_duration(args.timeout)
    except ValueError as exc:
        print(f"{PROG} flush: --timeout: {exc}", file=sys.stderr)
        return 2
    problem = foreign_in_shared_folder(path)
    if problem:  # its "ok" would say a token is on disk that no one wrote
        print(f"{PROG} flush: the control socket {path} {problem}, in a folder others may "
              "write: not asked", file=sys.stderr)
        return 1
    code, message = request_flush(path, timeout)
    print(message, file=sys.stdout if code == 0 else sys.stderr)
    return code


def check_config(argv: list[str], env: dict[str, str]) -> int:
    """Exit 0 if the exporter could start, 1 if the client id or secret is not set yet,
    78 if a setting is wrong.

    systemd's ExecCondition= runs it with --only-credentials: 1 skips the unit quietly
    (not configured yet), and any other problem is left to the exporter itself, whose exit
    status 78 fails the unit where `systemctl restart` and `systemctl status` show it (a
    failing condition would be retried by Restart=on-failure forever). Anything
    unexpected exits 255, which systemd shows as a failure."""
    try:
        return _check_config(argv, env)
    except SystemExit:
        raise
    except Exception as exc:
        print(f"{PROG}: check-config failed unexpectedly: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 255


def _check_config(argv: list[str], env: dict[str, str]) -> int:
    parser = build_parser(f"{PROG} check-config")
    parser.description = "Checks the settings without starting the exporter."
    parser.epilog = ("Exit status: 0 complete, 1 not configured yet (client id or secret "
                     f"missing), {EXIT_BAD_SETTING} a setting is wrong, 255 unexpected.")
    parser.add_argument("--only-credentials", action="store_true",
                        help="check only that the client id and secret are set (for "
                             "systemd's ExecCondition=; the exporter reports the rest)")
    parser.add_argument("--settings-file", default="/etc/default/netatmo-exporter",
                        metavar="PATH", help="the file the message tells to edit")
    parser.add_argument("--unit", default="netatmo-exporter", metavar="NAME",
                        help="the unit the message tells to restart")
    only_credentials = "--only-credentials" in argv
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        if only_credentials and exc.code:
            return 0  # the exporter itself names the bad flag, and fails the unit
        raise
    values = resolve(args, env)
    missing = [name for dest, name in (("client_id", "NETATMO_CLIENT_ID"),
                                       ("client_secret", "NETATMO_CLIENT_SECRET"))
               if not values[dest].strip()]
    if missing:
        print(f"{PROG}: not configured yet: set {' and '.join(missing)} in "
              f"{args.settings_file}, then run: systemctl restart {args.unit}",
              file=sys.stderr)
        return EXIT_NOT_CONFIGURED
    if only_credentials:
        return 0
    try:
        config_from(values, env)
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    print(f"{PROG}: configuration complete")
    return 0


def web_user(argv: list[str], env: dict[str, str]) -> int:
    from netatmo_exporter.entrypoints.web_user import run_web_user

    return run_web_user(argv, env)


def login(argv: list[str], env: dict[str, str]) -> int:
    from netatmo_exporter.entrypoints.login import run_login

    return run_login(argv, env)


def demo(argv: list[str], env: dict[str, str]) -> int:
    from netatmo_exporter.entrypoints.demo import run_demo

    return run_demo(argv, env)


def simulator(argv: list[str], env: dict[str, str]) -> int:
    from netatmo_exporter.entrypoints.simulator import run_simulator

    return run_simulator(argv)


def backfill(argv: list[str], env: dict[str, str]) -> int:
    from netatmo_exporter.entrypoints.backfill import run_backfill

    return run_backfill(argv, env)
