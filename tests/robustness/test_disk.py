"""A disk that refuses the token: the new token stays in memory, the old file stays whole,
the error is logged once, and the token reaches the disk once the disk is back."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.adapters.system.token_file import FileTokenStore
from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.robustness.conftest import StartExporter
from tests.support.harness import REPO, seed_token, wait_until


def _mount_tmpfs(directory: Path, size: str) -> bool:
    """A small private file system; False where this user may not mount (CI without root)."""
    directory.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                             str(directory)], capture_output=True, check=False)
    return result.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path | None]:
    directory = tmp_path / "disk"
    mounted = _mount_tmpfs(directory, "64k")
    yield directory if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for size in (4096, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


@pytest.mark.parametrize("trouble", ["full_disk", "directory_gone"])
def test_unwritable_disk_keeps_the_new_token_in_memory_until_it_returns(
    trouble: str, cloud: FakeNetatmoCloud, small_disk: Path | None, tmp_path: Path,
    start_exporter: StartExporter,
) -> None:
    if trouble == "full_disk" and small_disk is not None:
        directory = small_disk
        filler: list[Path] = []
        make_unwritable, make_writable = (lambda: filler.append(_fill(directory)),
                                          lambda: filler[0].unlink())
    else:  # without mount permission, a full disk is injected as a vanished directory
        directory = tmp_path / "state"
        directory.mkdir()
        make_unwritable, make_writable = (lambda: directory.rename(tmp_path / "away"),
                                          lambda: (tmp_path / "away").rename(directory))
    path = directory / "token.json"
    seed_token(cloud, path)
    before = path.read_bytes()
    exporter = start_exporter("--refresh-interval", "300ms", token_file=path)
    exporter.wait_for_metric("netatmo_up", 1.0)
    make_unwritable()

    cloud.expire_access_tokens()
    wait_until("refresh that cannot save", lambda: exporter.app.tokens.status().unsaved, 10.0)
    exporter.wait_for_metric("netatmo_up", 1.0)
    status, _ = exporter.get("/")
    failures = [line for line in exporter.log.lines() if "token_save_failed" in line]
    make_writable()

    assert status == 200
    assert len(failures) == 1 and "kept in memory" in failures[0]
    assert path.read_bytes() == before
    assert exporter.stop()
    saved = FileTokenStore(path).load()
    assert saved is not None and saved.refresh_token in cloud.valid_refresh_tokens()


def test_read_only_token_directory_is_refused_before_listening(
    cloud: FakeNetatmoCloud, small_disk: Path | None, tmp_path: Path
) -> None:
    directory = small_disk or tmp_path / "ro"
    directory.mkdir(exist_ok=True)
    path = directory / "token.json"
    seed_token(cloud, path)
    before = path.read_bytes()
    if small_disk is not None:
        subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
    else:
        os.chmod(directory, 0o500)
    if os.access(directory, os.W_OK):
        pytest.fail("could not make the directory read-only for this user")

    result = subprocess.run(
        [sys.executable, "-m", "netatmo_exporter", "--addr", "127.0.0.1:0",
         *exporter_args(cloud, path)],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False)

    assert result.returncode != 0
    assert result.stderr.count("\n") == 1
    assert "--token-file" in result.stderr and "not writable" in result.stderr
    assert path.read_bytes() == before


def test_missing_token_directory_is_refused_before_listening(
    cloud: FakeNetatmoCloud, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "netatmo_exporter", "--addr", "127.0.0.1:0",
         *exporter_args(cloud, tmp_path / "missing" / "token.json")],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False)

    assert result.returncode != 0
    assert "does not exist" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "missing").exists()
