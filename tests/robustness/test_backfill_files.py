"""The backfill's work directory under trouble: a second identical run, a full disk, a
read-only folder. Each ends in one line and a non-zero exit, the checkpoint whole, and the
same command then finishes with the file an untroubled run writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud
from netatmo_exporter.simulator.faults import Fault
from tests.integration.test_backfill import _wait_for_calls, backfill_args, run
from tests.support.harness import REPO, seed_token

PROG = "netatmo-exporter backfill: "
DAYS = 3

Mount = Callable[..., Path]


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """`mount(name, *args)` mounts on tmp_path/name (made first); every mount is undone at
    the end, the last first. Needs CAP_SYS_ADMIN: root on the host, not in the
    systemd-nspawn tree that runs the suite on the other release's libraries."""
    done: list[Path] = []

    def mount_on(name: str, *args: str) -> Path:
        target = tmp_path / name
        target.mkdir(exist_ok=True)
        result = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot mount here ({result.stderr.strip()}): this test runs as "
                        "root on the host")
        done.append(target)
        return target

    yield mount_on
    for target in reversed(done):
        subprocess.run(["umount", "-l", str(target)], check=False)


def _remount(target: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(target)], check=True)


@pytest.fixture
def reference(cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> Path:
    """The file an untroubled run writes."""
    seed_token(cloud, token_path)
    whole = tmp_path / "whole" / "history.om"
    whole.parent.mkdir()
    result = run(backfill_args(cloud, token_path, whole, DAYS))
    assert result.returncode == 0, result.stderr
    cloud.reset_counters()
    return whole


def _checkpoint(work: Path) -> dict[str, object]:
    state: dict[str, object] = json.loads((work / "checkpoint.json").read_text())
    return state


def _finishes_as(args: list[str], output: Path, reference: Path) -> None:
    result = run(args)
    assert result.returncode == 0, result.stderr
    assert "continuing the backfill" in result.stderr
    assert output.read_bytes() == reference.read_bytes()
    assert not output.with_name(output.name + ".partial").exists()


def test_a_second_identical_backfill_is_refused_while_the_first_runs(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, reference: Path) -> None:
    output = tmp_path / "history.om"
    work = tmp_path / "history.om.partial"
    args = backfill_args(cloud, token_path, output, DAYS)
    cloud.inject("getmeasure", Fault.delay(0.2), times=None)
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait_for_calls(work, 2, first)
        listings = cloud.count("getstationsdata")
        second = run(args)
        first_was_running = first.poll() is None
        listings_by_second = cloud.count("getstationsdata") - listings
        cloud.clear_faults()
        _, first_stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)

    assert first_was_running
    assert second.returncode == 1
    assert second.stderr == (f"{PROG}another backfill is running in {work} (it holds its "
                             "lock): wait for it to finish, or give another --output\n")
    assert first.returncode == 0, first_stderr
    assert output.read_bytes() == reference.read_bytes()
    assert listings_by_second == 0  # refused before it asked Netatmo anything


def test_a_full_disk_stops_in_one_line_and_the_run_resumes_once_there_is_room(
        cloud: FakeNetatmoCloud, token_path: Path, reference: Path, mount: Mount) -> None:
    room = reference.stat().st_size // 2 // 4096 * 4096
    disk = mount("disk", "-t", "tmpfs", "-o", f"size={room},mode=0755", "tmpfs")
    output = disk / "history.om"
    work = disk / "history.om.partial"
    args = backfill_args(cloud, token_path, output, DAYS)

    full = run(args)

    assert full.returncode == 1
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{PROG}cannot write {work}/") and (
        ": No space left on device (the work so far is kept in " in last), full.stderr
    assert "Traceback" not in full.stderr
    calls = _checkpoint(work)["calls"]
    assert isinstance(calls, int) and calls > 0
    assert not output.exists()

    _remount(disk, f"size={reference.stat().st_size * 4}")
    _finishes_as(args, output, reference)


def test_a_read_only_folder_stops_in_one_line_and_the_run_resumes_once_writable(
        cloud: FakeNetatmoCloud, token_path: Path, reference: Path, mount: Mount) -> None:
    folder = mount("folder", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs")
    output = folder / "history.om"
    work = folder / "history.om.partial"
    args = backfill_args(cloud, token_path, output, DAYS)
    cloud.inject("getmeasure", Fault.delay(0.1), times=None)
    stopped = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait_for_calls(work, 3, stopped)
        stopped.send_signal(signal.SIGTERM)
        stopped.wait(30)
    finally:
        if stopped.poll() is None:
            stopped.kill()
            stopped.wait(10)
    cloud.clear_faults()
    before = (work / "checkpoint.json").read_bytes()
    _remount(folder, "ro")

    refused = run(args)

    assert refused.returncode == 1
    assert refused.stderr == (f"{PROG}--output {output}: directory {folder} is on a "
                              "read-only file system\n")
    _remount(folder, "rw")
    assert (work / "checkpoint.json").read_bytes() == before
    _finishes_as(args, output, reference)
