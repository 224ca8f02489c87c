"""The backfill's work directory: a spool file per series and a checkpoint, then the output.

Each page's sample lines are appended to their series' spool and fsynced; then the
checkpoint (the cursors, the plan and each spool's length) replaces the previous one
atomically. A resumed run truncates every spool to the checkpointed length, so lines
written after the last checkpoint are dropped and fetched again. The output is assembled
family by family from the spools into a temporary file renamed over the output only when
complete; memory stays flat whatever the range.

The directory may sit in a folder others can write (`--output /tmp/h.om`), so nothing in it
is trusted by its name: it is created private (0700), refused when it exists and belongs
to another user or others may write to it, locked (flock) against a second run of the same
command, and every file in it is opened relative to the directory's descriptor without
following symbolic links; spool names come only from the planned series. Write failures
(a full disk, a read-only file system) are a `HistoryError` naming the file and the cause;
the last checkpoint stays whole, so the same command resumes once there is room.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from netatmo_exporter.adapters.history.output import (
    EOF,
    FAMILY_ORDER,
    Family,
    LabelPairs,
    family_header,
    family_of,
    live_series,
    sample_lines,
    series_prefix,
)
from netatmo_exporter.adapters.system.atomic_file import (
    create_unique,
    fsync_directory,
    write_all,
    write_atomically_in,
)
from netatmo_exporter.adapters.system.file_owner import foreign
from netatmo_exporter.domain.history.plan import (
    Cursors,
    HistoryError,
    OutputFormat,
    Plan,
    Series,
    Source,
    TimeRange,
)

CHECKPOINT = "checkpoint.json"
SPOOL_VERSION = 1
COPY_CHUNK = 1 << 20
SERIES_KEY = re.compile(r"[mr][0-9]{3}-[a-z0-9_]{1,40}")
"""The shape `plan_history` gives series keys: a spool's file name, never a path."""
SOURCE_KEY = re.compile(r"[mr][0-9]{3}")
_NO_FOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def work_dir_for(output: str) -> Path:
    """Beside the output, so that the final rename stays on one file system."""
    if output == "-":
        return Path("netatmo-backfill.partial")
    path = Path(output)
    return path.with_name(f"{path.name}.partial")


class WorkDirectory:
    """A backfill's work directory and checkpoint (the command it belongs to, its plan,
    range and cursors), claimed and locked as above; `Spool` keeps its spools in it, and
    remote write's sink only the checkpoint."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None

    @property
    def holds_work(self) -> bool:
        """Whether this run locked the directory and a checkpoint of it is there."""
        return self._fd is not None and _exists(CHECKPOINT, self._fd)

    def load(self, identity: Mapping[str, Any]) -> tuple[Plan, TimeRange, Cursors] | None:
        """The checkpoint of an earlier run of the same command; None when there is none.
        Raises `HistoryError` for another command's, or for a directory this run may not
        use."""
        if not self._claim(create=False):
            return None
        assert self._fd is not None
        try:
            with _open_inside(self._fd, CHECKPOINT, os.O_RDONLY, self.directory) as handle:
                text = handle.read().decode()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise HistoryError(f"cannot read {self.directory / CHECKPOINT}: "
                               f"{exc.strerror or exc}") from None
        except UnicodeDecodeError:
            text = ""
        try:
            state = json.loads(text)
            if state["version"] != SPOOL_VERSION:
                raise ValueError("another version")
            if state["identity"] != dict(identity):
                raise HistoryError(
                    f"{self.directory} holds the unfinished work of another backfill "
                    f"({_describe(state['identity'])}): run that command again to finish "
                    f"it, or delete {self.directory} to start this one")
            plan = _plan_from(state["plan"])
            span = TimeRange(int(state["span"][0]), int(state["span"][1]))
            cursors = Cursors({key: None if value is None else int(value)
                               for key, value in state["begins"].items()},
                              {key: int(value) for key, value in state["spooled"].items()},
                              int(state["calls"]),
                              [float(at) for at in state.get("recent_calls", [])],
                              {str(key): str(why) for key, why
                               in state.get("skipped", {}).items()})
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise HistoryError(f"{self.directory / CHECKPOINT} is damaged: delete "
                               f"{self.directory} and start again") from None
        self._check_names(plan, cursors)
        return plan, span, cursors

    def _check_names(self, plan: Plan, cursors: Cursors) -> None:
        series = {s.key for s in plan.series}
        sources = {source.key for source in plan.sources}
        strange = ([key for key in series if not SERIES_KEY.fullmatch(key)]
                   + [key for key in cursors.spooled if key not in series]
                   + [key for key in sources if not SOURCE_KEY.fullmatch(key)]
                   + [key for key in cursors.begins if key not in sources])
        if strange:
            raise HistoryError(
                f"{self.directory / CHECKPOINT} names {strange[0][:60]!r}, which is not one "
                f"of its planned series: delete {self.directory} and start again")

    def start(self, identity: Mapping[str, Any], plan: Plan, span: TimeRange,
              cursors: Cursors) -> None:
        """A fresh work directory holding the plan, before the first call for readings."""
        self._claim(create=True)
        assert self._fd is not None
        try:
            for stale in os.listdir(self._fd):
                if Path(stale).suffix in (".txt", ".json", ".tmp"):
                    os.unlink(stale, dir_fd=self._fd)
        except OSError as exc:
            raise HistoryError(f"cannot prepare the work directory {self.directory}: "
                               f"{exc.strerror or exc}") from None
        self._identity = dict(identity)
        self._plan = plan
        self._span = span
        self.checkpoint(cursors)

    def resume(self, identity: Mapping[str, Any], plan: Plan, span: TimeRange) -> None:
        self._identity = dict(identity)
        self._plan = plan
        self._span = span

    def _claim(self, create: bool) -> bool:
        """Opens and locks the directory (created first when `create`); False when it
        does not exist and is not to be created."""
        if self._fd is not None:
            return True
        for _ in range(5):  # a run that finished removes it between open and lock
            if create:
                try:
                    os.mkdir(self.directory, 0o700)
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise HistoryError(f"cannot create the work directory {self.directory}: "
                                       f"{exc.strerror or exc}") from None
            fd = _open_directory(self.directory)
            if fd is None:
                if create:
                    continue
                return False
            try:
                _check_private(self.directory, os.fstat(fd))
                _lock(fd, self.directory)
                if _same_file(self.directory, fd):
                    self._fd, fd = fd, -1
                    return True
            finally:
                if fd >= 0:
                    os.close(fd)
        raise HistoryError(f"the work directory {self.directory} keeps being replaced: "
                           "is another program removing it?")

    def checkpoint(self, cursors: Cursors) -> None:
        assert self._fd is not None
        state = {
            "version": SPOOL_VERSION, "identity": self._identity,
            "span": [self._span.begin, self._span.end], "plan": _plan_to(self._plan),
            "begins": cursors.begins, "spooled": cursors.spooled, "calls": cursors.calls,
            "recent_calls": cursors.recent_calls, "skipped": cursors.skipped,
        }
        try:
            write_atomically_in(self._fd, CHECKPOINT,
                              json.dumps(state, separators=(",", ":")).encode())
        except OSError as exc:
            raise _cannot_write(self.directory / CHECKPOINT, exc) from None

    def release(self) -> None:
        """Closes everything and unlocks the directory, keeping its content for a later run
        (ending the process does as much)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        """Only this run's directory, by its descriptor: never what a path now names."""
        assert self._fd is not None
        with contextlib.suppress(OSError):
            for name in os.listdir(self._fd):
                os.unlink(name, dir_fd=self._fd)
            if _same_file(self.directory, self._fd):
                os.rmdir(self.directory)
        self.release()

class Spool(WorkDirectory):
    """Satisfies `HistorySink`: a spool file per series in the work directory."""

    def __init__(self, directory: Path, output: OutputFormat, extra_labels: LabelPairs,
                 ) -> None:
        super().__init__(directory)
        self._output = output
        self._extra = extra_labels
        self._files: dict[str, int] = {}
        self._lines: dict[str, tuple[str, Family]] = {}

    def load(self, identity: Mapping[str, Any]) -> tuple[Plan, TimeRange, Cursors] | None:
        """The checkpoint of an earlier run of the same command, with the spools cut back
        to it; None when there is none. Raises `HistoryError` as `WorkDirectory.load`."""
        resumed = super().load(identity)
        if resumed is not None:
            self._cut_back(resumed[2])
        return resumed

    def _cut_back(self, cursors: Cursors) -> None:
        assert self._fd is not None
        for key, size in cursors.spooled.items():
            name = _spool_name(key)
            try:
                with _open_inside(self._fd, name, os.O_WRONLY, self.directory) as handle:
                    if os.fstat(handle.fileno()).st_size < size:
                        raise HistoryError(f"{self.directory / name} is shorter than its "
                                           f"checkpoint: delete {self.directory} and start "
                                           "again")
                    os.ftruncate(handle.fileno(), size)
            except FileNotFoundError:
                if size:
                    raise HistoryError(f"{self.directory / name} is missing: delete "
                                       f"{self.directory} and start again") from None
            except OSError as exc:
                raise _cannot_write(self.directory / name, exc) from None

    def append(self, series: Series, samples: Sequence[tuple[int, float]]) -> int:
        fd = self._spool(series)
        name = _spool_name(series.key)
        try:
            if samples:
                known = self._lines.get(series.key)
                if known is None:
                    family, labels = live_series(series, self._extra)
                    known = series_prefix(family.name, labels), family
                    self._lines[series.key] = known
                prefix, family = known
                write_all(fd, sample_lines(prefix, samples, family.convert,
                                            self._output).encode())
                os.fsync(fd)
            return os.lseek(fd, 0, os.SEEK_END)
        except OSError as exc:
            raise _cannot_write(self.directory / name, exc) from None

    def _spool(self, series: Series) -> int:
        fd = self._files.get(series.key)
        if fd is None:
            assert self._fd is not None
            name = _spool_name(series.key)
            try:
                fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NO_FOLLOW, 0o600,
                             dir_fd=self._fd)
            except OSError as exc:
                raise _refused_or_unwritable(self.directory / name, exc) from None
            try:
                _check_plain(self.directory / name, os.fstat(fd))
            except HistoryError:
                os.close(fd)
                raise
            self._files[series.key] = fd
        return fd

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()

    def release(self) -> None:
        self.close()
        super().release()

    def assemble(self, plan: Plan, cursors: Cursors, target: str, stdout: IO[bytes]
                 ) -> int:
        """Write the output from the spools; returns the number of sample lines."""
        self.close()
        if target == "-":
            lines = self._write_output(plan, cursors, stdout)
            stdout.flush()
        else:
            path = Path(target)
            try:
                fd, temporary = create_unique(str(path.parent / f".{path.name}."), 0o666)
            except OSError as exc:
                raise _cannot_write(path, exc) from None
            try:
                with os.fdopen(fd, "wb") as out:
                    lines = self._write_output(plan, cursors, out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
                fsync_directory(path.parent)
            except (OSError, HistoryError) as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                if isinstance(exc, HistoryError):
                    raise
                raise _cannot_write(path, exc) from None
        self.remove()
        return lines

    def _write_output(self, plan: Plan, cursors: Cursors, out: IO[bytes]) -> int:
        assert self._fd is not None
        by_family: dict[str, list[Series]] = {}
        for series in plan.series:
            if cursors.spooled.get(series.key, 0) > 0:
                by_family.setdefault(family_of(series).name, []).append(series)
        lines = 0
        for name in FAMILY_ORDER:
            members = by_family.get(name, [])
            if not members:
                continue
            out.write(family_header(family_of(members[0]), self._output).encode())
            for series in members:
                spool = _spool_name(series.key)
                with _open_inside(self._fd, spool, os.O_RDONLY, self.directory) as handle:
                    lines += _copy(handle, self.directory / spool,
                                   cursors.spooled[series.key], out)
        if self._output == "openmetrics":
            out.write(EOF.encode())
        return lines


def _spool_name(key: str) -> str:
    if not SERIES_KEY.fullmatch(key):
        raise HistoryError(f"{key[:60]!r} is not a series of the plan")
    return f"{key}.txt"


def _open_directory(directory: Path) -> int | None:
    try:
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | _NO_FOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(directory):
            raise HistoryError(f"the work directory {directory} is a symbolic link: remove "
                               "it, or give another --output") from None
        raise HistoryError(f"cannot open the work directory {directory}: "
                           f"{exc.strerror or exc}") from None


def _check_private(directory: Path, info: os.stat_result) -> None:
    problem = foreign(info)
    if problem:
        raise HistoryError(f"the work directory {directory} {problem}: this run will not "
                           "use it; remove it, or give another --output")
    if info.st_mode & 0o022:
        raise HistoryError(f"the work directory {directory} may be written by other users "
                           f"(mode {stat.S_IMODE(info.st_mode):o}): this run will not use "
                           "it; remove it, or give another --output")


def _check_plain(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_uid != os.geteuid():
        raise HistoryError(f"{path} is not a plain file of this user: this run will not use "
                           "it; delete its work directory and start again")


def _lock(fd: int, directory: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise HistoryError(f"another backfill is running in {directory} (it holds its "
                           "lock): wait for it to finish, or give another --output") from None
    except OSError as exc:
        raise HistoryError(f"cannot lock the work directory {directory}: "
                           f"{exc.strerror or exc}") from None


def _same_file(path: Path, fd: int) -> bool:
    try:
        now = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _exists(name: str, directory_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _open_inside(directory_fd: int, name: str, flags: int, directory: Path
                 ) -> Iterator[IO[bytes]]:
    """A plain file of this user in the work directory, never through a link."""
    try:
        fd = os.open(name, flags | _NO_FOLLOW, dir_fd=directory_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _refused_or_unwritable(directory / name, exc) from None
    with os.fdopen(fd, "rb" if flags == os.O_RDONLY else "r+b", buffering=0) as handle:
        _check_plain(directory / name, os.fstat(fd))
        yield handle


def _refused_or_unwritable(path: Path, exc: OSError) -> HistoryError:
    if exc.errno == errno.ELOOP:
        return HistoryError(f"{path} is a symbolic link: this run will not follow it; delete "
                            "its work directory and start again")
    return _cannot_write(path, exc)


def _cannot_write(path: Path, exc: OSError) -> HistoryError:
    return HistoryError(f"cannot write {path}: {exc.strerror or exc}")


def _copy(spool: IO[bytes], path: Path, size: int, out: IO[bytes]) -> int:
    """Copy the first `size` bytes of a spool; returns its line count."""
    lines = 0
    left = size
    while left > 0:
        chunk = spool.read(min(COPY_CHUNK, left))
        if not chunk:
            raise HistoryError(f"{path} is shorter than its checkpoint")
        out.write(chunk)
        lines += chunk.count(b"\n")
        left -= len(chunk)
    return lines


def _describe(identity: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in identity.items() if value)


def _plan_to(plan: Plan) -> dict[str, Any]:
    return {
        "notes": list(plan.notes),
        "sources": [{
            "key": source.key, "kind": source.kind, "ids": list(source.ids),
            "scope": source.scope, "title": source.title,
            "series": [{"key": s.key, "type": s.measure_type, "field": s.field,
                        "labels": [list(pair) for pair in s.labels]} for s in source.series],
        } for source in plan.sources],
    }


def _plan_from(data: Mapping[str, Any]) -> Plan:
    sources = []
    for item in data["sources"]:
        kind = item["kind"]
        if kind not in ("module", "room"):
            raise ValueError(kind)
        first, second = item["ids"]
        series = tuple(Series(str(s["key"]), str(s["type"]), str(s["field"]),
                              tuple((str(name), str(value)) for name, value in s["labels"]))
                       for s in item["series"])
        sources.append(Source(str(item["key"]), kind, (str(first), None if second is None
                                                        else str(second)),
                              str(item["scope"]), str(item["title"]), series))
    return Plan(tuple(sources), tuple(str(note) for note in data["notes"]))
