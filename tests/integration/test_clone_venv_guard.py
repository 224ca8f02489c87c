"""`python3 -m venv` pointed at the clone itself stops before writing anything: the tracked
file `include` stands where venv needs a directory. (A venv there would put bin/ and lib/
among the sources and, from Python 3.13 on, replace the tracked .gitignore with "*".)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.harness import REPO


def test_a_venv_created_at_the_clone_path_fails_and_leaves_the_clone_as_it_was(
    tmp_path: Path,
) -> None:
    clone = tmp_path / "netatmo-exporter"
    clone.mkdir()
    for name in ("include", ".gitignore", "README.md"):
        shutil.copy2(REPO / name, clone / name)
    before = {path.name: path.read_bytes() for path in clone.iterdir()}

    result = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(clone)],
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode != 0
    assert "/include" in result.stderr
    assert {path.name: path.read_bytes() for path in clone.iterdir()} == before
