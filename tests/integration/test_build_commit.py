"""`/version` names the commit a wheel or package was built from: setup.py's build step
writes it into the package when the build runs in a git checkout, a commit.txt already in
the source (scripts/build-deb's copy) is packaged as it is, and elsewhere it is "unknown".

The wheels are built by the system Python's pip and setuptools (the venv has no `wheel`
package, which bookworm's setuptools 66 needs), without build isolation: no network."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.support.harness import REPO

SYSTEM_PYTHON = "/usr/bin/python3"


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(REPO / "netatmo_exporter", source / "netatmo_exporter",
                    ignore=shutil.ignore_patterns("__pycache__", "commit.txt"))
    for name in ("pyproject.toml", "setup.cfg", "setup.py", "README.md", "LICENSE", ".gitignore"):
        shutil.copy2(REPO / name, source / name)
    return source


def _git(source: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(source), "-c", "user.name=test", "-c", "user.email=test@example.org",
         *args], capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def _wheel_commit(source: Path, out: Path) -> str | None:
    subprocess.run([SYSTEM_PYTHON, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "-w", str(out), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("netatmo_exporter-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        if "netatmo_exporter/commit.txt" not in names:
            return None
        archive.extractall(out / "unpacked")
    answer = subprocess.run(
        [SYSTEM_PYTHON, "-c", "from netatmo_exporter.build_info import build_commit; "
         "print(build_commit())"], cwd=out / "unpacked", capture_output=True, text=True,
        check=True, timeout=60)
    return answer.stdout.strip()


def test_a_wheel_built_in_a_git_checkout_names_its_commit(tmp_path: Path) -> None:
    source = _source(tmp_path)
    _git(source, "init", "-q")
    _git(source, "add", "-A")
    _git(source, "commit", "-q", "-m", "a commit")
    head = _git(source, "rev-parse", "HEAD")

    assert _wheel_commit(source, tmp_path / "clean") == head

    (source / "README.md").write_text("changed\n")
    assert _wheel_commit(source, tmp_path / "dirty") == head + "-dirty"


def test_outside_a_checkout_the_source_commit_file_is_packaged_or_none(
    tmp_path: Path,
) -> None:
    source = _source(tmp_path)
    assert _wheel_commit(source, tmp_path / "none") is None

    (source / "netatmo_exporter" / "commit.txt").write_text("0123abc\n")
    assert _wheel_commit(source, tmp_path / "given") == "0123abc"


def test_a_source_tree_says_unknown() -> None:
    from netatmo_exporter.build_info import COMMIT_FILE, build_commit

    assert not COMMIT_FILE.exists()
    assert build_commit() == "unknown"
