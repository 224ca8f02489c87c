"""The token file: Go-compatible both ways, atomic, 0600, corrupt content kept aside."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from netatmo_exporter.adapters.system.token_file import (
    FileTokenStore,
    _lock_within,
    format_expiry,
    parse_expiry,
)
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.errors import CorruptTokenFile, TokenFileError, TransientError

REPO = Path(__file__).resolve().parents[2]
# What Go's time.Parse(time.RFC3339, ...) accepts: a T separator, at most nine fraction
# digits, Z or a +hh:mm offset.
GO_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
GO_FILE = (b'{"access_token":"5a1b|go-access","token_type":"Bearer",'
           b'"refresh_token":"5a1b|go-refresh","expiry":"2026-11-25T20:32:06.400559267+01:00"}\n')


def test_reads_a_go_exporter_file_with_nanoseconds_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    path.write_bytes(GO_FILE)

    token = FileTokenStore(path).load()

    assert token is not None
    assert token.access_token == "5a1b|go-access"
    assert token.refresh_token == "5a1b|go-refresh"
    assert token.token_type == "Bearer"
    expected = datetime(2026, 11, 25, 19, 32, 6, 400559, tzinfo=UTC)
    assert token.expiry == expected
    assert token.expires_at() == pytest.approx(expected.timestamp())


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-25T20:32:06Z", datetime(2026, 11, 25, 20, 32, 6, tzinfo=UTC)),
    ("2026-11-25T20:32:06.5Z", datetime(2026, 11, 25, 20, 32, 6, 500000, tzinfo=UTC)),
    ("2026-11-25T20:32:06.123456789-05:30",
     datetime(2026, 11, 26, 2, 2, 6, 123456, tzinfo=UTC)),
    ("2026-11-25T20:32:06+00:00", datetime(2026, 11, 25, 20, 32, 6, tzinfo=UTC)),
])
def test_parses_rfc3339_variants(text: str, expected: datetime) -> None:
    assert parse_expiry(text) == expected


def test_go_zero_time_means_no_expiry(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    path.write_text(json.dumps({"access_token": "a", "refresh_token": "r",
                                "expiry": "0001-01-01T00:00:00Z"}))

    token = FileTokenStore(path).load()

    assert token is not None and token.expiry is None
    assert format_expiry(None) == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize("expiry", [
    datetime(2026, 11, 25, 20, 32, 6, 400559, tzinfo=timezone(timedelta(hours=1))),
    datetime(2026, 11, 25, 20, 32, 6, tzinfo=UTC),
    datetime(2030, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    None,
])
def test_written_expiry_is_parseable_by_go(tmp_path: Path, expiry: datetime | None) -> None:
    path = tmp_path / "token.json"
    FileTokenStore(path).save(Token("a", "r", expiry, lifetime=10800))

    written = json.loads(path.read_text())["expiry"]

    assert GO_RFC3339.match(written), written
    assert parse_expiry(written) == expiry


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "token.json")
    token = Token.from_grant("acc|1", "ref|1", 10800, 1_700_000_000.5, ("read_station",))
    token = replace(token.authorized(1_699_990_000.123456789), renewals=4)

    store.save(token)

    assert store.load() == token
    data = json.loads((tmp_path / "token.json").read_text())
    assert {"access_token", "token_type", "refresh_token", "expiry"} <= set(data)
    # The authorization identity: extra fields, which the Go exporter's reader ignores.
    assert GO_RFC3339.match(data["authorized_at"]) and data["renewals"] == 4


@pytest.mark.parametrize("identity", [
    {}, {"authorized_at": "yesterday"}, {"authorized_at": 5}, {"renewals": 3},
    {"authorized_at": "2026-12-07T17:00:00Z", "renewals": "3"},
    {"authorized_at": "2026-12-07T17:00:00Z", "renewals": True},
])
def test_a_file_without_a_usable_authorization_identity_is_of_unknown_lineage(
        tmp_path: Path, identity: dict[str, object]) -> None:
    path = tmp_path / "token.json"
    path.write_text(json.dumps({"access_token": "a", "refresh_token": "r", **identity}))

    token = FileTokenStore(path).load()

    assert token is not None and (token.authorized_at, token.renewals) == (None, 0)


def test_refresh_token_only_file_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    path.write_text('{"refresh_token": "only-this"}')

    token = FileTokenStore(path).load()

    assert token is not None
    assert (token.access_token, token.refresh_token, token.expiry) == ("", "only-this", None)


def test_missing_file_is_not_authorized_yet(tmp_path: Path) -> None:
    assert FileTokenStore(tmp_path / "absent.json").load() is None


def test_written_file_is_mode_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    old = os.umask(0)
    try:
        FileTokenStore(path).save(Token("a", "r", None))
    finally:
        os.umask(old)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_renames_a_temp_file_into_place(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    store = FileTokenStore(path)
    store.save(Token("a", "r1", None))
    held = open(path, "rb")
    try:
        store.save(Token("a", "r2", None))
        assert json.loads(held.read())["refresh_token"] == "r1"
    finally:
        held.close()

    assert json.loads(path.read_text())["refresh_token"] == "r2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token.json"]


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    # Root passes permission checks, so the write error is injected with a file size
    # limit in a child process: the temp file's write fails with EFBIG.
    path = tmp_path / "token.json"
    FileTokenStore(path).save(Token("old-access", "old-refresh", None))
    before = path.read_bytes()
    script = (
        "import resource, signal, sys\n"
        "from netatmo_exporter.adapters.system.token_file import FileTokenStore\n"
        "from netatmo_exporter.domain.errors import TokenFileError\n"
        "from netatmo_exporter.domain.authorization.token import Token\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))\n"
        "try:\n"
        "    FileTokenStore(sys.argv[1]).save(Token('n' * 200, 'm' * 200, None))\n"
        "except TokenFileError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                            text=True, timeout=30, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO)})

    assert result.returncode == 3, result.stderr
    assert "cannot write token file" in result.stdout
    assert "nnnn" not in result.stdout
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token.json"]


def test_save_into_a_vanished_directory_is_reported(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "gone" / "token.json")

    with pytest.raises(TokenFileError, match="cannot write token file"):
        store.save(Token("a", "r", None))


@pytest.mark.parametrize(("content", "reason"), [
    (b'{"access_token": "a", "refresh_token": "r", "exp', "not valid JSON"),
    (b"", "not valid JSON"),
    (b"\xff\xfe\x00binary\x00", "not UTF-8"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b'{"token_type": "Bearer"}', "neither an access_token nor a refresh_token"),
    (b'{"refresh_token": "r", "expiry": "yesterday"}', "not an RFC 3339 time"),
    (b'{"refresh_token": "r", "expiry": "2026-13-45T99:00:00Z"}', "month"),
    (b'{"refresh_token": 42}', "must be strings"),
    (b'{"refresh_token": "r", "pad": "' + b"x" * 100_000 + b'"}', "larger than"),
])
def test_corrupt_content_is_moved_aside_and_reported(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "token.json"
    path.write_bytes(content)

    with pytest.raises(CorruptTokenFile, match=reason) as caught:
        FileTokenStore(path).load()

    moved = caught.value.moved_to
    assert moved is not None and Path(moved).name.startswith("token.json.corrupt-")
    assert Path(moved).read_bytes() == content
    assert moved in str(caught.value)
    assert not path.exists()


def test_two_corrupt_files_in_a_row_are_both_kept(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    store = FileTokenStore(path)
    kept = []
    for content in (b"first garbage", b"second garbage"):
        path.write_bytes(content)
        with pytest.raises(CorruptTokenFile) as caught:
            store.load()
        kept.append(caught.value.moved_to)

    assert kept[0] != kept[1]
    assert [Path(str(p)).read_bytes() for p in kept] == [b"first garbage", b"second garbage"]


def test_a_save_after_corruption_does_not_touch_the_kept_copy(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    path.write_bytes(b"{garbage")
    store = FileTokenStore(path)
    with pytest.raises(CorruptTokenFile) as caught:
        store.load()

    store.save(Token("a", "r", None))

    assert Path(str(caught.value.moved_to)).read_bytes() == b"{garbage"
    assert store.load() == Token("a", "r", None)


def test_corrupt_message_never_contains_token_values(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    path.write_text('{"access_token": "secret-access-123", "refresh_token": "secret-ref-456"')

    with pytest.raises(CorruptTokenFile) as caught:
        FileTokenStore(path).load()

    assert "secret-" not in str(caught.value)


def test_load_if_replaced_sees_only_other_writers(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    ours = FileTokenStore(path)
    ours.save(Token(refresh_token="ours"))
    assert ours.load_if_replaced() is None

    FileTokenStore(path).save(Token(refresh_token="from-login"))
    replaced = ours.load_if_replaced()
    assert replaced is not None and replaced.refresh_token == "from-login"
    assert ours.load_if_replaced() is None

    path.write_bytes(b"{not json")
    assert ours.load_if_replaced() is None
    assert path.read_bytes() == b"{not json"  # left for the next start to report
    path.unlink()
    assert ours.load_if_replaced() is None


def test_the_renewal_lock_excludes_another_holder_of_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    first, second = FileTokenStore(path), FileTokenStore(path)
    with first.renewal_lock():
        fd = os.open(f"{path}.lock", os.O_RDWR)
        try:
            with pytest.raises(TransientError, match="another process has been renewing"):
                _lock_within(fd, 0.2, path)
        finally:
            os.close(fd)
    with second.renewal_lock():  # released with the first
        pass
    assert stat.S_IMODE(os.stat(f"{path}.lock").st_mode) == 0o600


def test_a_directory_that_refuses_the_lock_file_does_not_stop_a_renewal(
        tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "missing" / "token.json")
    with store.renewal_lock() as held:
        assert held is None


@pytest.mark.parametrize("made", ["by another user", "as a symbolic link"])
def test_a_renewal_lock_this_user_did_not_make_is_refused_in_one_line(
        tmp_path: Path, made: str) -> None:
    """Made in a shared folder after the start (the start refuses one made before): no
    renewal waits on a lock someone else may hold for ever."""
    path = tmp_path / "token.json"
    lock = tmp_path / "token.json.lock"
    if made == "by another user":
        lock.write_bytes(b"")
        os.chown(lock, 65534, 65534)  # the test runs as root, as in CI
        expected = "belongs to another user (uid 65534)"
    else:
        victim = tmp_path / "elsewhere"
        victim.write_text("kept\n")
        lock.symlink_to(victim)
        expected = "is a symbolic link"

    with pytest.raises(TransientError, match=re.escape(f"the renewal lock {lock} {expected}: "
                                                       "remove it")) as refused:
        with FileTokenStore(path).renewal_lock():
            pass
    assert refused.value.reason == "token_lock_refused"
