"""How a user types this program again: the start of every command a hint prints, so that
the hint runs as printed, from any directory, however the program was started (the console
script of a venv or the Debian package, or `python3 -m netatmo_exporter` from a clone)."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

PACKAGE = "netatmo_exporter"


def _as_typed(path: str, env: Mapping[str, str]) -> str:
    """`path`, or only its name when PATH finds that very file under it."""
    name = Path(path).name
    found = shutil.which(name, path=env.get("PATH"))
    return name if found is not None and Path(found).absolute() == Path(path).absolute() \
        else shlex.quote(str(Path(path).absolute()))


def program_command(env: Mapping[str, str], argv0: str | None = None,
                    executable: str | None = None) -> str:
    """`netatmo-exporter`, a venv's `/path/bin/netatmo-exporter`, or `python3 -m
    netatmo_exporter` with the PYTHONPATH a source tree needs."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    program = Path(argv0)
    if program.name != "__main__.py":
        return _as_typed(argv0, env)
    python = f"{_as_typed(executable, env)} -m {PACKAGE}"
    tree = program.absolute().parent.parent
    if (tree / "pyproject.toml").is_file():  # a clone: importable only from its top
        return f"PYTHONPATH={shlex.quote(str(tree))} {python}"
    return python
