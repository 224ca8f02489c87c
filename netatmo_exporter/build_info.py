"""Facts about how this copy of the package was built."""

from __future__ import annotations

from pathlib import Path

COMMIT_FILE = Path(__file__).with_name("commit.txt")


def build_commit() -> str:
    """The git commit the package was built from: the build writes it into the package
    (setup.py's build_py, or scripts/build-deb); a source tree says "unknown"."""
    try:
        commit = COMMIT_FILE.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "unknown"
    return commit or "unknown"
