"""`netatmo-exporter web-user NAME`: adds a basic-auth user to the web configuration file,
or changes its password, asking for the password twice without echo."""

from __future__ import annotations

import argparse
import locale
import os
import sys
import termios
from collections.abc import Callable

from netatmo_exporter.adapters.web.config_file import (
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


LINE_LIMIT = 4096
"""More than any password bcrypt can check (72 bytes), however it is encoded."""


def ask_password(prompt: str) -> bytes:
    """The bytes typed: at a terminal with the echo off, without one (a script, a pipe)
    the next line of standard input. Bytes, because the terminal's encoding is not always
    the one Python would decode with; `run_web_user` decodes them."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return _line(sys.stdin.buffer.readline(LINE_LIMIT))
    try:
        return _read_without_echo(fd, prompt)
    except termios.error:  # /dev/tty that is no terminal: read as a script would
        return _line(sys.stdin.buffer.readline(LINE_LIMIT))
    finally:
        os.close(fd)


def _read_without_echo(fd: int, prompt: str) -> bytes:
    saved = termios.tcgetattr(fd)
    quiet = saved[:]
    quiet[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
    typed = b""
    try:
        os.write(fd, prompt.encode(terminal_encoding(), "replace"))
        while not typed.endswith(b"\n") and len(typed) < LINE_LIMIT:
            chunk = os.read(fd, LINE_LIMIT)
            if not chunk:
                break
            typed += chunk
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
        os.write(fd, b"\n")
    return _line(typed)


def _line(typed: bytes) -> bytes:
    if not typed:
        raise EOFError
    return typed.rstrip(b"\r\n")


def terminal_encoding() -> str:
    """The locale's (LANG, LC_ALL, LC_CTYPE), which the terminal is expected to follow."""
    return locale.getpreferredencoding(False)


def run_web_user(argv: list[str], env: dict[str, str],
                 ask: Callable[[str], bytes] = ask_password) -> int:
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


def _ask_twice(user: str, ask: Callable[[str], bytes]) -> str | None:
    """The password as text, which the hash takes in UTF-8, as browsers and Prometheus
    send it, whatever the terminal's encoding."""
    encoding = terminal_encoding()
    try:
        password = _decoded(ask(f"New password for {user}: "), encoding)
        if password is None:
            return None
        if not password:
            print(f"{PROG}: the password is empty; nothing written", file=sys.stderr)
            return None
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            print(f"{PROG}: the password is longer than {MAX_PASSWORD_BYTES} bytes, which "
                  "bcrypt cannot check; nothing written", file=sys.stderr)
            return None
        again = _decoded(ask("Same password again: "), encoding)
    except (EOFError, KeyboardInterrupt):
        print(f"\n{PROG}: no password given; nothing written", file=sys.stderr)
        return None
    if again is None:
        return None
    if again != password:
        print(f"{PROG}: the passwords differ; nothing written", file=sys.stderr)
        return None
    return password


def _decoded(typed: bytes, encoding: str) -> str | None:
    try:
        return typed.decode(encoding)
    except UnicodeDecodeError:
        print(f"{PROG}: the password is not {encoding} text, the encoding the locale "
              "(LANG, LC_ALL) gives; set the locale to the terminal's encoding; nothing "
              "written", file=sys.stderr)
        return None
