"""setuptools reads the project from pyproject.toml and setup.cfg; this file adds one
build step: the git commit the package is built from, written into it as
netatmo_exporter/commit.txt for `/version`.

Built outside a git checkout (a release tarball, Debian's build of the source package)
the step writes nothing, and a commit.txt already in the source (scripts/build-deb
writes one into its copy) is packaged as it is.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def git_commit() -> str:
    """HEAD of the checkout this file is the top of, `-dirty` with uncommitted changes;
    "" when it is not the top of a checkout (a tarball unpacked inside another)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(HERE), *args], capture_output=True,  # noqa: S603, S607
                              text=True, check=True, timeout=30).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != HERE:
            return ""
        commit = git("rev-parse", "--verify", "HEAD")
        dirty = git("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("-dirty" if dirty else "")


class BuildPyWithCommit(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        # An editable install runs from the checkout: /version reads no commit file there.
        commit = "" if getattr(self, "editable_mode", False) else git_commit()
        if commit:
            target = Path(self.build_lib, "netatmo_exporter", "commit.txt")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(commit + "\n", encoding="ascii")


setup(cmdclass={"build_py": BuildPyWithCommit})
