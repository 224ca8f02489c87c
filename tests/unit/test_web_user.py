"""The web configuration file as `netatmo-exporter web-user` writes it."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

import bcrypt
import pytest
import yaml

from netatmo_exporter.adapters.web.config_file import (
    WebConfigError,
    hash_password,
    load_web_config,
    set_user,
)
from netatmo_exporter.entrypoints.web_user import run_web_user

HASH = hash_password("correct horse", rounds=4)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_holds_the_user_and_is_not_for_others(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    group = grp.getgrgid(os.getegid()).gr_name

    assert set_user(str(path), "prometheus", HASH, group) is True

    assert load_web_config(str(path)).basic_auth_users == {"prometheus": HASH.encode()}
    assert mode(path) == 0o640
    assert path.stat().st_gid == os.getegid()
    assert [p.name for p in tmp_path.iterdir()] == ["web.yml"]


def test_other_users_and_keys_are_kept_and_a_password_changed(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    other = hash_password("other", rounds=4)
    path.write_text("# comment\nbasic_auth_users:\n  grafana: " + other + "\n  prometheus: "
                    + other + "\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    path.chmod(0o604)

    assert set_user(str(path), "prometheus", HASH) is False

    document = yaml.safe_load(path.read_text())
    assert document == {"basic_auth_users": {"grafana": other, "prometheus": HASH},
                        "http_server_config": {"headers": {"X-Frame-Options": "deny"}}}
    assert mode(path) == 0o600


def test_a_file_the_exporter_would_refuse_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users: [a, b]\n")

    with pytest.raises(WebConfigError, match="basic_auth_users"):
        set_user(str(path), "prometheus", HASH)
    with pytest.raises(WebConfigError, match="':'"):
        set_user(str(tmp_path / "new.yml"), "pro:metheus", HASH)
    with pytest.raises(WebConfigError, match="no group named"):
        set_user(str(tmp_path / "new.yml"), "prometheus", HASH, "no-such-group-here")

    assert path.read_text() == "basic_auth_users: [a, b]\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web.yml"]


def test_the_hash_checks_the_password() -> None:
    assert bcrypt.checkpw(b"correct horse", HASH.encode())
    assert not bcrypt.checkpw(b"correct horse ", HASH.encode())
    assert hash_password("x").startswith("$2b$10$")


@pytest.mark.parametrize(("answers", "problem"), [
    (["", ""], "the password is empty"),
    (["one", "two"], "the passwords differ"),
    (["x" * 73, "x" * 73], "longer than 72 bytes"),
    ([], "no password given"),
])
def test_refused_passwords_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], answers: list[str], problem: str
) -> None:
    replies = iter(answers)

    def ask(_prompt: str) -> bytes:
        try:
            return next(replies).encode()
        except StopIteration:
            raise EOFError from None

    path = tmp_path / "web.yml"
    assert run_web_user(["--web.config.file", str(path), "prometheus"], {}, ask) == 1
    assert problem in capsys.readouterr().err
    assert not path.exists()


def test_the_file_comes_from_the_environment_or_a_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "web.yml"

    assert run_web_user(["prometheus"], {}, lambda _: b"pw") == 2
    assert "NETATMO_EXPORTER_WEB_CONFIG" in capsys.readouterr().err
    assert run_web_user(["prometheus"], {"NETATMO_EXPORTER_WEB_CONFIG": str(path)},
                        lambda _: b"pw") == 0
    assert "added 'prometheus'" in capsys.readouterr().out
    assert run_web_user(["prometheus"], {"NETATMO_EXPORTER_WEB_CONFIG": str(path)},
                        lambda _: b"pw2") == 0
    assert "changed the password of 'prometheus'" in capsys.readouterr().out
    hashed = load_web_config(str(path)).basic_auth_users["prometheus"]
    assert bcrypt.checkpw(b"pw2", hashed)
