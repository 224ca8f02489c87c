"""The history follower's checkpoints on disk: `<token file>.history.json` beside the token
file (one per instance, in the state directory the package purges), JSON, written
atomically with mode 0600 after every page the receiver took:

    {"version": 1, "written_until": {"module:70:ee:50:00:00:01/02:00:00:00:00:01": 1765100700}}

An unusable file is moved aside (`.corrupt-<time>`) with one log line and the follower
starts again from its lookback: a page sent twice carries the same values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from netatmo_exporter.adapters.system.atomic_file import move_aside, write_atomically
from netatmo_exporter.domain.history.follower import CheckpointError
from netatmo_exporter.domain.ports import EventLog

CHECKPOINT_VERSION = 1
MAX_CHECKPOINT_BYTES = 1 << 20


def checkpoint_path(token_file: str) -> Path:
    token = Path(token_file)
    return token.with_name(f"{token.name}.history.json")


class FileCheckpointStore:
    """Satisfies `CheckpointStore`."""

    def __init__(self, path: Path, log: EventLog) -> None:
        self.path = path
        self._log = log

    def load(self) -> dict[str, int]:
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read(MAX_CHECKPOINT_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            self._log.error("history_checkpoint_unreadable", file=str(self.path),
                            problem=exc.strerror, starting_from="the lookback")
            return {}
        try:
            return _parse(raw)
        except ValueError as exc:
            moved_to = move_aside(self.path)
            self._log.error("history_checkpoint_corrupt", file=str(self.path), problem=str(exc),
                            kept_as=moved_to or "left in place", starting_from="the lookback")
            return {}

    def save(self, checkpoints: Mapping[str, int]) -> None:
        data = {"version": CHECKPOINT_VERSION, "written_until": dict(sorted(checkpoints.items()))}
        try:
            write_atomically(self.path, json.dumps(data, indent=1).encode() + b"\n")
        except OSError as exc:
            raise CheckpointError(f"cannot write the history checkpoint {self.path}: "
                                  f"{exc.strerror or exc}") from None


def _parse(raw: bytes) -> dict[str, int]:
    if len(raw) > MAX_CHECKPOINT_BYTES:
        raise ValueError(f"larger than {MAX_CHECKPOINT_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"not a version {CHECKPOINT_VERSION} history checkpoint")
    written = data.get("written_until")
    if not isinstance(written, dict) or not all(
            isinstance(key, str) and type(value) is int and value >= 0
            for key, value in written.items()):
        raise ValueError("written_until is not a map of source to Unix seconds")
    return dict(written)
