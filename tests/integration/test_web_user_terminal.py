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

from netatmo_exporter.adapters.web_config import load_web_config
from tests.support.harness import REPO

PASSWORD = "typed-at-the-terminal"


class Terminal:
    """The command on a fresh pseudo-terminal (its controlling terminal, via setsid)."""

    def __init__(self, *args: str) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            ["setsid", "--ctty", "--wait", sys.executable, "-m", "netatmo_exporter", *args],
            stdin=slave, stdout=slave, stderr=slave, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)})
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

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

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


def test_without_a_terminal_the_password_comes_from_standard_input(tmp_path: Path) -> None:
    """A script: `printf 'pw\\npw\\n' | netatmo-exporter web-user ...`, no warning printed."""
    path = tmp_path / "web.yml"
    result = subprocess.run(
        ["setsid", "--wait", sys.executable, "-m", "netatmo_exporter", "web-user",
         "--web.config.file", str(path), "prometheus"],
        input=f"{PASSWORD}\n{PASSWORD}\n", capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=30, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and PASSWORD not in result.stdout
    assert bcrypt.checkpw(PASSWORD.encode(),
                          load_web_config(str(path)).basic_auth_users["prometheus"])
