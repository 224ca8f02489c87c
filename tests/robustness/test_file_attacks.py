"""Files another local user prepares in a shared folder (the red team's, 2026-12-07): the
backfill's work directory, a symlinked spool or temporary file, a checkpoint naming a path
outside its folder, a renewal lock and a control socket made first by someone else. Each is
refused in one line; nothing of the victim's is read, written or copied.

The victim is this test process (root, whom no permission stops: the strongest case); the
other user is `nobody`, whose actions run under setpriv."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud
from netatmo_exporter.simulator.faults import Fault
from tests.conftest import exporter_args
from tests.integration.test_backfill import _wait_for_calls, backfill_args, run
from tests.robustness.conftest import StartExporter
from tests.support.harness import REPO, seed_token, wait_until

OTHER = pwd.getpwnam("nobody")
REFUSED = ("this run will not use it; remove it, or give another --output")


def as_other(*command: str, background: bool = False) -> subprocess.Popen[bytes]:
    """`command` as the other user, without this process's groups."""
    proc = subprocess.Popen(["setpriv", f"--reuid={OTHER.pw_uid}", f"--regid={OTHER.pw_gid}",
                             "--clear-groups", "--", *command])
    if not background:
        assert proc.wait(30) == 0, command
    return proc


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder everyone may write, sticky like /tmp."""
    folder = Path(tempfile.mkdtemp(prefix="netatmo-shared-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def private(tmp_path: Path) -> Path:
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    return folder


def _stopped_backfill(cloud: FakeNetatmoCloud, args: list[str], work: Path) -> None:
    """A run killed after its first pages, leaving its work directory and checkpoint."""
    cloud.inject("getmeasure", Fault.delay(0.2), times=None)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        _wait_for_calls(work, 2, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    cloud.clear_faults()


def _edit_checkpoint(work: Path, change: dict[str, object]) -> None:
    path = work / "checkpoint.json"
    state = json.loads(path.read_text())
    state.update(change)
    path.write_text(json.dumps(state))


def _one_line(result: subprocess.CompletedProcess[str], expected: str, status: int) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert expected in result.stderr, result.stderr


def test_a_work_directory_prepared_by_another_user_with_a_symlinked_spool_is_refused(
        cloud: FakeNetatmoCloud, shared: Path, private: Path) -> None:
    token_path = private / "token.json"
    seed_token(cloud, token_path)
    token = token_path.read_bytes()
    output = shared / "h.om"
    work = shared / "h.om.partial"
    args = backfill_args(cloud, token_path, output, 3)
    _stopped_backfill(cloud, args, work)
    # What the red team left: a finished checkpoint whose first spool is the token file.
    state = json.loads((work / "checkpoint.json").read_text())
    first = next(iter(state["spooled"]))
    _edit_checkpoint(work, {"begins": dict.fromkeys(state["begins"]),
                            "spooled": {**state["spooled"], first: len(token)}})
    subprocess.run(["chown", "-R", f"{OTHER.pw_uid}:{OTHER.pw_gid}", str(work)], check=True)
    as_other("ln", "-sfn", str(token_path), str(work / f"{first}.txt"))

    result = run(args)

    _one_line(result, f"the work directory {work} belongs to another user (uid "
                      f"{OTHER.pw_uid}): {REFUSED}", 1)
    assert not output.exists()
    assert token_path.read_bytes() == token
    leaked = [path for path in shared.rglob("*")
              if not path.is_symlink() and path.is_file() and token in path.read_bytes()]
    assert leaked == []


def test_a_symlinked_temporary_checkpoint_in_another_users_directory_writes_nothing(
        cloud: FakeNetatmoCloud, shared: Path, private: Path) -> None:
    token_path = private / "token.json"
    seed_token(cloud, token_path)
    victim = private / "notes.txt"
    victim.write_text("mine\n")
    work = shared / "h.om.partial"
    as_other("mkdir", "-m", "0777", str(work))
    as_other("ln", "-s", str(victim), str(work / "checkpoint.json.tmp"))

    result = run(backfill_args(cloud, token_path, shared / "h.om", 1))

    _one_line(result, f"the work directory {work} belongs to another user", 1)
    assert victim.read_text() == "mine\n"
    assert cloud.count("getmeasure") == 0


def test_a_work_directory_others_may_write_is_refused(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    work = tmp_path / "h.om.partial"
    work.mkdir()
    work.chmod(0o777)

    result = run(backfill_args(cloud, token_path, tmp_path / "h.om", 1))

    _one_line(result, f"the work directory {work} may be written by other users (mode 777)",
              1)


def test_a_checkpoint_naming_a_path_outside_its_folder_is_refused(
        cloud: FakeNetatmoCloud, private: Path) -> None:
    token_path = private / "token.json"
    seed_token(cloud, token_path)
    output = private / "out" / "h.om"
    output.parent.mkdir()
    work = private / "out" / "h.om.partial"
    args = backfill_args(cloud, token_path, output, 3)
    _stopped_backfill(cloud, args, work)
    secret = private / "x" / "secret.txt"  # work/../../x/secret.txt
    secret.parent.mkdir()
    secret.write_text("not for the output\n")
    state = json.loads((work / "checkpoint.json").read_text())
    state["plan"]["sources"][0]["series"][0]["key"] = "../../x/secret"
    _edit_checkpoint(work, {"plan": state["plan"],
                            "spooled": {**state["spooled"], "../../x/secret": 5}})

    result = run(args)

    _one_line(result, f"{work}/checkpoint.json names '../../x/secret', which is not one of "
                      f"its planned series: delete {work} and start again", 1)
    assert secret.read_text() == "not for the output\n"
    assert not output.exists()


def _start(cloud: FakeNetatmoCloud, token_path: Path, *extra: str
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netatmo_exporter", "--addr", "127.0.0.1:0",
         *exporter_args(cloud, token_path, *extra)],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False)


def test_a_renewal_lock_another_user_made_and_holds_stops_the_start_in_one_line(
        cloud: FakeNetatmoCloud, shared: Path) -> None:
    token_path = shared / "token.json"
    seed_token(cloud, token_path)
    lock = shared / "token.json.lock"
    as_other("sh", "-c", f"umask 0; : > {lock}")
    holder = as_other("flock", "--nonblock", str(lock), "sleep", "60", background=True)
    try:
        service = _start(cloud, token_path)
        backfill = run(backfill_args(cloud, token_path, shared / "h.om", 1))
    finally:
        holder.kill()
        holder.wait(10)

    expected = (f"--token-file (NETATMO_EXPORTER_TOKEN_FILE): the renewal lock {lock} "
                f"belongs to another user (uid {OTHER.pw_uid}): remove it")
    _one_line(service, expected, 78)
    _one_line(backfill, expected, 78)
    assert cloud.count("refresh_grants") == 0


@pytest.mark.parametrize("made_by", ["another user", "this user, not a socket"])
def test_a_control_socket_path_taken_stops_the_start_in_one_line(
        cloud: FakeNetatmoCloud, shared: Path, private: Path, made_by: str) -> None:
    token_path = private / "token.json"
    seed_token(cloud, token_path)
    path = shared / "control.sock"
    if made_by == "another user":
        as_other("/usr/bin/python3", "-c", "import socket, sys; socket.socket(socket.AF_UNIX)"
                 ".bind(sys.argv[1])", str(path))
        expected = f"belongs to another user (uid {OTHER.pw_uid})"
    else:
        path.write_text("keep me\n")
        expected = "is not a socket"

    result = _start(cloud, token_path, "--control-socket", str(path))

    _one_line(result, f"configuration error: --control-socket {path} {expected}: remove it, "
                      "or give another path", 78)
    assert path.exists()
    if made_by != "another user":
        assert path.read_text() == "keep me\n"


@pytest.mark.parametrize("where", ["a folder that does not exist", "a path too long"])
def test_a_control_socket_path_it_cannot_listen_on_stops_the_start_with_its_reason(
        cloud: FakeNetatmoCloud, private: Path, where: str) -> None:
    token_path = private / "token.json"
    seed_token(cloud, token_path)
    with tempfile.TemporaryDirectory(prefix="ne-", dir="/tmp") as short:
        if where == "a path too long":  # sockaddr_un holds 108 bytes
            path = Path(short) / ("x" * 120) / "control.sock"
            (path.parent).mkdir()
            reason = "AF_UNIX path too long"
        else:
            path = Path(short) / "no-such-folder" / "control.sock"
            reason = "No such file or directory"

        result = _start(cloud, token_path, "--control-socket", str(path))

    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"netatmo-exporter: configuration error: --control-socket {path}: cannot listen "
        f"there ({reason}): give a short path in a folder the service may write")


@pytest.fixture
def impostor_socket(shared: Path) -> Iterator[Path]:
    """Another user listening on a control socket path in the shared folder."""
    path = shared / "control.sock"
    impostor = as_other("/usr/bin/python3", "-c", "import socket, sys, time; "
                        "s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); "
                        "time.sleep(60)", str(path), background=True)
    try:
        wait_until("impostor's socket", path.exists, 10.0)
        yield path
    finally:
        impostor.kill()
        impostor.wait(10)


def test_a_backfill_takes_no_token_from_another_users_socket_in_a_shared_folder(
        cloud: FakeNetatmoCloud, private: Path, impostor_socket: Path) -> None:
    token_path = private / "token.json"
    seed_token(cloud, token_path)
    args = backfill_args(cloud, token_path, private / "h.om", 1)
    args[args.index("--control-socket") + 1] = str(impostor_socket)

    result = run(args)

    _one_line(result, f"the control socket {impostor_socket} belongs to another user (uid "
                      f"{OTHER.pw_uid}), in a folder others may write: this run will not "
                      "take tokens from it", 1)
    assert cloud.count("requests") == 0


def test_flush_does_not_ask_another_users_socket_in_a_shared_folder(
        impostor_socket: Path) -> None:
    result = run([sys.executable, "-m", "netatmo_exporter", "flush", "--control-socket",
                  str(impostor_socket), "--timeout", "2s"])

    _one_line(result, f"flush: the control socket {impostor_socket} belongs to another user "
                      f"(uid {OTHER.pw_uid}), in a folder others may write: not asked", 1)


def test_a_renewal_lock_another_user_makes_after_the_start_is_named_and_waited_on_never(
        cloud: FakeNetatmoCloud, shared: Path, start_exporter: StartExporter) -> None:
    """Made between the start and the first renewal: each renewal says why it cannot run
    (a transient failure, retried), the service lives on, and a renewal works again as
    soon as the file is gone."""
    token_path = shared / "token.json"
    seed_token(cloud, token_path)
    exporter = start_exporter("--refresh-interval", "300ms", token_file=token_path)
    exporter.wait_for_metric("netatmo_up", 1.0)
    lock = shared / "token.json.lock"
    as_other("sh", "-c", f"umask 0; : > {lock}")

    cloud.expire_access_tokens()
    wait_until("renewal refusing the lock",
               lambda: "token_lock_refused" in exporter.log.getvalue(), 15.0)
    refused = [line for line in exporter.log.lines() if "token_lock_refused" in line]
    subprocess.run(["rm", "-f", str(lock)], check=True)
    wait_until("renewal once the lock is gone", lambda: exporter.metric("netatmo_up") == 1.0
               and exporter.app.tokens.status().valid, 30.0)

    print(f"\n{len(refused)} renewal(s) refused the lock: {refused[0]}")
    assert f"the renewal lock {lock} belongs to another user (uid {OTHER.pw_uid})" in \
        refused[0]
    assert "Traceback" not in exporter.log.getvalue()
    assert cloud.count("invalid_grant") == 0
