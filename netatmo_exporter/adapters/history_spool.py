"""The backfill's work directory: a spool file per series and a checkpoint, then the output.

Each page's sample lines are appended to their series' spool and fsynced; then the
checkpoint (the cursors, the plan and each spool's length) replaces the previous one
atomically. A resumed run truncates every spool to the checkpointed length, so lines
written after the last checkpoint are dropped and fetched again. The output is assembled
family by family from the spools into a temporary file renamed over the output only when
complete; memory stays flat whatever the range.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO

from netatmo_exporter.adapters.atomic_file import fsync_directory, write_atomically
from netatmo_exporter.adapters.history_output import (
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
from netatmo_exporter.domain.history import (
    Cursors,
    HistoryError,
    OutputFormat,
    Plan,
    Series,
    Source,
    TimeRange,
)

CHECKPOINT = "checkpoint.json"
FORMAT_VERSION = 1
COPY_CHUNK = 1 << 20


def work_dir_for(output: str) -> Path:
    """Beside the output, so that the final rename stays on one file system."""
    if output == "-":
        return Path("netatmo-backfill.partial")
    path = Path(output)
    return path.with_name(f"{path.name}.partial")


class Spool:
    """Satisfies `HistorySink`."""

    def __init__(self, directory: Path, output: OutputFormat, extra_labels: LabelPairs,
                 ) -> None:
        self.directory = directory
        self._output = output
        self._extra = extra_labels
        self._files: dict[str, BinaryIO] = {}
        self._lines: dict[str, tuple[str, Family]] = {}

    def load(self, identity: Mapping[str, Any]) -> tuple[Plan, TimeRange, Cursors] | None:
        """The checkpoint of an earlier run of the same command, with the spools cut back
        to it; None when there is none. Raises `HistoryError` for another command's."""
        try:
            text = (self.directory / CHECKPOINT).read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise HistoryError(f"cannot read {self.directory / CHECKPOINT}: "
                               f"{exc.strerror or exc}") from None
        try:
            state = json.loads(text)
            if state["version"] != FORMAT_VERSION:
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
        except (ValueError, KeyError, TypeError, IndexError):
            raise HistoryError(f"{self.directory / CHECKPOINT} is damaged: delete "
                               f"{self.directory} and start again") from None
        self._cut_back(cursors)
        return plan, span, cursors

    def _cut_back(self, cursors: Cursors) -> None:
        for key, size in cursors.spooled.items():
            path = self._spool_path(key)
            try:
                if path.stat().st_size < size:
                    raise HistoryError(f"{path} is shorter than its checkpoint: delete "
                                       f"{self.directory} and start again")
                os.truncate(path, size)
            except FileNotFoundError:
                if size:
                    raise HistoryError(f"{path} is missing: delete {self.directory} and "
                                       "start again") from None

    def start(self, identity: Mapping[str, Any], plan: Plan, span: TimeRange,
              cursors: Cursors) -> None:
        """A fresh work directory holding the plan, before the first call for readings."""
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
            for stale in self.directory.iterdir():
                if stale.suffix in (".txt", ".json", ".tmp"):
                    stale.unlink()
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

    def append(self, series: Series, samples: Sequence[tuple[int, float]]) -> int:
        spool = self._spool(series)
        if samples:
            known = self._lines.get(series.key)
            if known is None:
                family, labels = live_series(series, self._extra)
                known = series_prefix(family.name, labels), family
                self._lines[series.key] = known
            prefix, family = known
            spool.write(sample_lines(prefix, samples, family.convert, self._output).encode())
            spool.flush()
            os.fsync(spool.fileno())
        return spool.tell()

    def checkpoint(self, cursors: Cursors) -> None:
        state = {
            "version": FORMAT_VERSION, "identity": self._identity,
            "span": [self._span.begin, self._span.end], "plan": _plan_to(self._plan),
            "begins": cursors.begins, "spooled": cursors.spooled, "calls": cursors.calls,
            "recent_calls": cursors.recent_calls, "skipped": cursors.skipped,
        }
        write_atomically(self.directory / CHECKPOINT,
                          json.dumps(state, separators=(",", ":")).encode())

    def _spool(self, series: Series) -> BinaryIO:
        spool = self._files.get(series.key)
        if spool is None:
            spool = open(self._spool_path(series.key), "ab")
            self._files[series.key] = spool
        return spool

    def _spool_path(self, key: str) -> Path:
        return self.directory / f"{key}.txt"

    def close(self) -> None:
        for spool in self._files.values():
            spool.close()
        self._files.clear()

    def assemble(self, plan: Plan, cursors: Cursors, target: str, stdout: IO[bytes]
                 ) -> int:
        """Write the output from the spools; returns the number of sample lines."""
        self.close()
        if target == "-":
            lines = self._write_output(plan, cursors, stdout)
            stdout.flush()
        else:
            path = Path(target)
            temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            try:
                with open(temporary, "wb") as out:
                    lines = self._write_output(plan, cursors, out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
                fsync_directory(path.parent)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    temporary.unlink()
                raise HistoryError(f"cannot write {path}: {exc.strerror or exc} (the work "
                                   f"directory {self.directory} is kept: run again)") from None
        shutil.rmtree(self.directory, ignore_errors=True)
        return lines

    def _write_output(self, plan: Plan, cursors: Cursors, out: IO[bytes]) -> int:
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
                lines += _copy(self._spool_path(series.key), cursors.spooled[series.key], out)
        if self._output == "openmetrics":
            out.write(EOF.encode())
        return lines


def _copy(path: Path, size: int, out: IO[bytes]) -> int:
    """Copy the first `size` bytes of a spool; returns its line count."""
    lines = 0
    with open(path, "rb") as spool:
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
