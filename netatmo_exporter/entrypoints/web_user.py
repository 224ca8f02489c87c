"""`netatmo-exporter web-user NAME`: adds a basic-auth user to the web configuration file,
or changes its password, asking for the password twice without echo."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from netatmo_exporter.adapters.web_config import (
    MAX_PASSWORD_BYTES,
    WebConfigError,
    hash_password,
    set_user,
)

PROG = "netatmo-exporter web-user"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Add a user to the web configuration file (exporter-toolkit format: "
                    "basic_auth_users with a bcrypt hash), or change its password. Asks for "
                    "the password twice without echo (without a terminal: two lines of "
                    "standard input). Other users and settings are kept (comments are "
                    "not). A new file gets mode 0640 and --group; an existing one keeps its "
                    "owner, group and mode. The running exporter reads the file at start: "
                    "restart it afterwards.")
    parser.add_argument("user", metavar="USER", help="the user name (Prometheus' "
                        "basic_auth username)")
    parser.add_argument("--web.config.file", dest="path", default=None, metavar="PATH",
                        help="the file to write [env NETATMO_EXPORTER_WEB_CONFIG]")
    parser.add_argument("--group", default=None, metavar="GROUP",
                        help="the group that may read the file, e.g. the service's "
                             "(netatmo-exporter on the Debian package)")
    return parser


def ask_password(prompt: str) -> str:
    """At a terminal, getpass with the echo off; without one (a script, a pipe), the next
    line of standard input, without getpass's warning that it cannot hide the echo."""
    try:
        with open("/dev/tty", "rb"):
            pass
    except OSError:
        line = sys.stdin.readline()
        if not line:
            raise EOFError from None
        return line.rstrip("\r\n")
    return getpass.getpass(prompt)


def run_web_user(argv: list[str], env: dict[str, str],
                 ask: Callable[[str], str] = ask_password) -> int:
    args = build_parser().parse_args(argv)
    path = args.path or env.get("NETATMO_EXPORTER_WEB_CONFIG", "")
    if not path:
        print(f"{PROG}: give --web.config.file PATH or set NETATMO_EXPORTER_WEB_CONFIG",
              file=sys.stderr)
        return 2
    password = _ask_twice(args.user, ask)
    if password is None:
        return 1
    try:
        added = set_user(path, args.user, hash_password(password), args.group)
    except WebConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{PROG}: {'added' if added else 'changed the password of'} {args.user!r} in "
          f"{path}; restart the exporter to use it")
    return 0


def _ask_twice(user: str, ask: Callable[[str], str]) -> str | None:
    try:
        password = ask(f"New password for {user}: ")
        if not password:
            print(f"{PROG}: the password is empty; nothing written", file=sys.stderr)
            return None
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            print(f"{PROG}: the password is longer than {MAX_PASSWORD_BYTES} bytes, which "
                  "bcrypt cannot check; nothing written", file=sys.stderr)
            return None
        again = ask("Same password again: ")
    except (EOFError, KeyboardInterrupt):
        print(f"\n{PROG}: no password given; nothing written", file=sys.stderr)
        return None
    if again != password:
        print(f"{PROG}: the passwords differ; nothing written", file=sys.stderr)
        return None
    return password
