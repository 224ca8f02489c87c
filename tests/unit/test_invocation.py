"""The command a printed hint starts with runs as printed, from any directory."""

from __future__ import annotations

import os
from pathlib import Path

from netatmo_exporter.entrypoints.invocation import program_command


def _executable(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_a_console_script_found_on_path_is_named_alone(tmp_path: Path) -> None:
    script = _executable(tmp_path / "bin" / "netatmo-exporter")
    assert program_command({"PATH": str(tmp_path / "bin")}, script) == "netatmo-exporter"


def test_a_console_script_not_on_path_is_named_by_its_full_path(tmp_path: Path) -> None:
    script = _executable(tmp_path / "my venv" / "bin" / "netatmo-exporter")
    assert program_command({"PATH": "/usr/bin:/bin"}, script) == (
        f"'{tmp_path}/my venv/bin/netatmo-exporter'")


def test_python_m_from_a_clone_carries_the_clones_pythonpath(tmp_path: Path) -> None:
    clone = tmp_path / "netatmo-exporter"
    (clone / "netatmo_exporter").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("")
    python = _executable(tmp_path / "usr" / "bin" / "python3")
    main = str(clone / "netatmo_exporter" / "__main__.py")

    assert program_command({"PATH": str(tmp_path / "usr" / "bin")}, main, python) == (
        f"PYTHONPATH={clone} python3 -m netatmo_exporter")
    assert program_command({"PATH": "/nowhere"}, main, python) == (
        f"PYTHONPATH={clone} {python} -m netatmo_exporter")


def test_python_m_of_an_installed_package_needs_no_pythonpath(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3" / "site-packages" / "netatmo_exporter"
    site.mkdir(parents=True)
    python = _executable(tmp_path / "bin" / "python3")
    assert program_command({"PATH": os.defpath}, str(site / "__main__.py"), python) == (
        f"{python} -m netatmo_exporter")
