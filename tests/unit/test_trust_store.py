"""The trust store (adapters/system/trust_store.py): the system's hashed folder read when a
chain needs it (no CA parsed at start: the memory figure of issue 23), OpenSSL's variables
obeyed, certifi's bundle only where the system has no store, an extra CA added."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import certifi
import pytest

from netatmo_exporter.adapters.system.trust_store import hashed_folder, trust_context
from tests.support.harness import self_signed_certificate


@pytest.fixture(autouse=True)
def _no_openssl_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def _cas(context: ssl.SSLContext) -> int:
    return int(context.cert_store_stats()["x509_ca"])


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Path]:
    """A hashed folder holding one CA, and that CA's file."""
    _, cert = self_signed_certificate(tmp_path, "ca.test")
    folder = tmp_path / "certs"
    folder.mkdir()
    shutil.copy(cert, folder / "ca.pem")
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    return folder, cert


def test_a_hashed_folder_is_read_when_a_chain_needs_it(store: tuple[Path, Path]) -> None:
    folder, _ = store
    context = trust_context(folders=(str(folder),))
    assert _cas(context) == 0
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_certifi_where_the_system_has_no_hashed_folder(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a hashed link\n")
    context = trust_context(folders=(str(tmp_path), str(tmp_path / "absent")))
    bundled = ssl.create_default_context(cafile=certifi.where())
    assert _cas(context) == _cas(bundled) > 50


def test_openssl_variables_choose_the_store(store: tuple[Path, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    folder, cert = store
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert _cas(trust_context(folders=())) == 1
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    assert _cas(trust_context(folders=())) == 0


def test_an_extra_ca_file_is_added(store: tuple[Path, Path], tmp_path: Path) -> None:
    folder, cert = store
    assert _cas(trust_context(str(cert), folders=(str(folder),))) == 1


def test_hashed_names_only(tmp_path: Path) -> None:
    for name in ("README", "ca-certificates.crt", "java", "1234567.0", "abcdefgh.0"):
        (tmp_path / name).write_text("")
    assert hashed_folder((str(tmp_path),)) is None
    (tmp_path / "9d6523ce.1").write_text("")
    assert hashed_folder((str(tmp_path / "absent"), str(tmp_path))) == str(tmp_path)


@pytest.mark.skipif(hashed_folder() is None, reason="this system keeps no hashed CA folder")
def test_on_this_system_the_store_is_its_folder() -> None:
    assert _cas(trust_context()) == 0
