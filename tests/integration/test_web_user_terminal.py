"""`netatmo-exporter web-user` at a terminal, as a user types at it: a pseudo-terminal is
the process's controlling terminal, where getpass asks and turns the echo off."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import pytest

from netatmo_exporter.adapters.web.config_file import load_web_config
from tests.support.harness import REPO

PASSWORD = "typed-at-the-terminal"


class Terminal:
    """The command on a fresh pseudo-terminal (its controlling terminal, via setsid)."""

    def __init__(self, *args: str, locale: dict[str, str] | None = None) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            ["setsid", "--ctty", "--wait", sys.executable, "-m", "netatmo_exporter", *args],
            stdin=slave, stdout=slave, stderr=slave, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **(locale or {})})
        os.close(slave)
        self.screen = b""

    def expect(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.screen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} on the terminal: {self.screen!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the process ended and closed its side
                    chunk = b""
                assert chunk, f"the terminal closed before {text!r}: {self.screen!r}"
                self.screen += chunk

    def type(self, line: str | bytes) -> None:
        os.write(self.master, (line.encode() if isinstance(line, str) else line) + b"\r")

    def finish(self) -> int:
        try:
            code = self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        while select.select([self.master], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.screen += chunk
        os.close(self.master)
        return code


def test_password_asked_twice_without_echo(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    terminal = Terminal("web-user", "--web.config.file", str(path), "prometheus")

    terminal.expect("New password for prometheus: ")
    terminal.type(PASSWORD)
    terminal.expect("Same password again: ")
    terminal.type(PASSWORD)
    assert terminal.finish() == 0

    assert PASSWORD.encode() not in terminal.screen
    assert b"added 'prometheus'" in terminal.screen
    hashed = load_web_config(str(path)).basic_auth_users["prometheus"]
    assert bcrypt.checkpw(PASSWORD.encode(), hashed)
    assert oct(path.stat().st_mode & 0o777) == "0o640"


def test_a_mismatch_at_the_terminal_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    terminal = Terminal("web-user", "--web.config.file", str(path), "prometheus")

    terminal.expect("New password for prometheus: ")
    terminal.type(PASSWORD)
    terminal.expect("Same password again: ")
    terminal.type(PASSWORD + "x")
    assert terminal.finish() == 1

    assert b"the passwords differ; nothing written" in terminal.screen
    assert PASSWORD.encode() not in terminal.screen
    assert not path.exists()


def _script(path: Path, typed: bytes, locale: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[bytes]:
    """web-user without a controlling terminal, its standard input `typed`."""
    return subprocess.run(
        ["setsid", "--wait", sys.executable, "-m", "netatmo_exporter", "web-user",
         "--web.config.file", str(path), "prometheus"],
        input=typed, capture_output=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(locale or {})}, timeout=30,
        check=False)


def test_without_a_terminal_the_password_comes_from_standard_input(tmp_path: Path) -> None:
    """A script: `printf 'pw\\npw\\n' | netatmo-exporter web-user ...`, no warning printed."""
    path = tmp_path / "web.yml"
    result = _script(path, f"{PASSWORD}\n{PASSWORD}\n".encode())

    assert result.returncode == 0, result.stderr
    assert result.stderr == b"" and PASSWORD.encode() not in result.stdout
    assert bcrypt.checkpw(PASSWORD.encode(),
                          load_web_config(str(path)).basic_auth_users["prometheus"])


UTF8_TERMINAL = {"LC_ALL": "C.UTF-8", "PYTHONUTF8": "0"}


def _latin1_terminal(tmp_path: Path) -> dict[str, str]:
    """A locale whose encoding is ISO-8859-1, compiled into a private LOCPATH (the
    `locales` package's sources; scripts/test installs it)."""
    where = tmp_path / "locales"
    where.mkdir()
    result = subprocess.run(["localedef", "-i", "fr_FR", "-f", "ISO-8859-1",
                             str(where / "fr_FR.ISO-8859-1")],
                            capture_output=True, text=True, timeout=60, check=False)
    if not (where / "fr_FR.ISO-8859-1").is_dir():
        pytest.fail(f"localedef could not build fr_FR.ISO-8859-1 (apt install locales): "
                    f"{result.stderr.strip()}")
    return {"LOCPATH": str(where), "LC_ALL": "fr_FR.ISO-8859-1", "PYTHONUTF8": "0",
            "PYTHONCOERCECLOCALE": "0"}


@pytest.mark.parametrize("terminal_encoding", ["utf-8", "iso-8859-1"])
def test_a_password_typed_in_the_terminals_encoding_is_hashed_as_utf8(
        tmp_path: Path, terminal_encoding: str) -> None:
    """What a browser or Prometheus sends for the same password is UTF-8."""
    password = "Pässwörd-€uro" if terminal_encoding == "utf-8" else "Pässwörd-çà"
    locale = UTF8_TERMINAL if terminal_encoding == "utf-8" else _latin1_terminal(tmp_path)
    path = tmp_path / "web.yml"
    terminal = Terminal("web-user", "--web.config.file", str(path), "prometheus",
                        locale=locale)

    terminal.expect("New password for prometheus: ")
    terminal.type(password.encode(terminal_encoding))
    terminal.expect("Same password again: ")
    terminal.type(password.encode(terminal_encoding))
    assert terminal.finish() == 0, terminal.screen

    assert b"Traceback" not in terminal.screen
    hashed = load_web_config(str(path)).basic_auth_users["prometheus"]
    assert bcrypt.checkpw(password.encode("utf-8"), hashed)


def test_a_password_not_in_the_terminals_encoding_is_refused_in_one_line(
        tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    terminal = Terminal("web-user", "--web.config.file", str(path), "prometheus",
                        locale=UTF8_TERMINAL)

    terminal.expect("New password for prometheus: ")
    terminal.type("Pässwörd".encode("iso-8859-1"))
    assert terminal.finish() == 1

    refusal = [line for line in terminal.screen.splitlines() if b"web-user:" in line]
    assert refusal == [b"netatmo-exporter web-user: the password is not UTF-8 text, the "
                       b"encoding the locale (LANG, LC_ALL) gives; set the locale to the "
                       b"terminal's encoding; nothing written"]
    assert b"Traceback" not in terminal.screen and b"Same password" not in terminal.screen
    assert not path.exists()


def test_a_script_piping_bytes_of_another_encoding_gets_one_line(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    result = _script(path, b"p\xe4ss\np\xe4ss\n", UTF8_TERMINAL)

    assert result.returncode == 1
    assert result.stderr.count(b"\n") == 1 and b"is not UTF-8 text" in result.stderr
    assert not path.exists()
