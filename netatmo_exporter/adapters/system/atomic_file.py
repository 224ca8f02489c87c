"""Writing a file so that a crash or a signal leaves the old content or the new, never a
torn one: a temporary file in the same folder, fsync, rename over the target, fsync the
folder (the rename itself is durable only then)."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import tempfile
import time
from pathlib import Path


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> os.stat_result:
    """Replaces `path` by `data` with `mode`; the new file's stat. Raises `OSError` (the
    temporary file removed)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
            written = os.fstat(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_directory(path.parent)
    return written


def write_atomically_in(directory_fd: int, name: str, data: bytes, mode: int = 0o600
                        ) -> None:
    """As `write_atomically`, for a file named relative to an open folder: in a folder
    others could once reach, nothing is looked up by path again (no link followed)."""
    fd, temporary = create_unique(f".{name}.", mode, directory_fd)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory_fd)
        raise
    os.fsync(directory_fd)


def write_all(fd: int, data: bytes) -> None:
    """All of `data`, however few bytes each write takes."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def create_unique(prefix: str, mode: int, directory_fd: int | None = None
                  ) -> tuple[int, str]:
    """A new file `<prefix><random>.tmp` (relative to `directory_fd` when given) of a name
    no one can have prepared: O_EXCL never follows a link. The umask applies to `mode`."""
    for _ in range(100):
        name = f"{prefix}{secrets.token_hex(6)}.tmp"
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                           | os.O_CLOEXEC, mode, dir_fd=directory_fd), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", prefix)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move_aside(path: Path) -> str | None:
    """Renames an unusable file to `<file>.corrupt-<time>` (never over an earlier kept
    copy), so that it is kept rather than overwritten; the new name, or None if it could
    not be moved."""
    stem = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
    target = stem
    for n in range(1, 100):
        if not os.path.lexists(target):
            break
        target = f"{stem}.{n}"
    try:
        os.replace(path, target)
        fsync_directory(path.parent)
    except OSError:
        return None
    return target
