"""Whether a path in a folder other users may write is this user's own. A lock file, a
socket or a work directory someone else created first would let them block, read or
redirect what the exporter writes there: such a path is refused, with its reason."""

from __future__ import annotations

import os
import stat


def foreign(info: os.stat_result) -> str | None:
    """Why a file (as `lstat` or `fstat` saw it) is not to be used; None when it is this
    user's own and no link."""
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if info.st_uid != os.geteuid():
        return f"belongs to another user (uid {info.st_uid})"
    return None


def foreign_path(path: str | os.PathLike[str]) -> str | None:
    """As `foreign`, for a path; None when nothing is there (or it cannot be examined: the
    write that follows reports that)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return foreign(info)


def foreign_in_shared_folder(path: str | os.PathLike[str]) -> str | None:
    """As `foreign_path`, but only where others could have put it: in a folder that others
    may write. The service's socket in its own runtime folder (/run/netatmo-exporter) is
    accepted, from root too: no one else could have made it there."""
    problem = foreign_path(path)
    if problem is None:
        return None
    try:
        folder = os.stat(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return None
    return problem if folder.st_mode & 0o022 else None
