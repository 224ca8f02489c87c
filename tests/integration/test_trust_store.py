"""Netatmo over https://, trusted through the system's store (issue 23): the service verifies
the certificate against the CAs OpenSSL finds in a hashed folder (Debian's /etc/ssl/certs,
or `SSL_CERT_DIR`) or a bundle (`SSL_CERT_FILE`), and refuses one it does not trust, keeping
its token. The simulated cloud sits behind a TLS front with a certificate of the test's."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.support.harness import (
    ExporterProcess,
    exporter_args,
    seed_token,
    self_signed_certificate,
    wait_until,
)
from tests.support.tls_front import tls_front, tls_proxy

UP = "netatmo_up 1.0"


@pytest.fixture
def netatmo_https(cloud: FakeNetatmoCloud, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The simulated cloud at https://127.0.0.1:PORT and the certificate it shows."""
    key, cert = self_signed_certificate(tmp_path, "netatmo.test")
    with tls_front(cloud.port, key, cert) as url:
        yield url, cert


def _hashed_folder(cert: Path, folder: Path) -> Path:
    folder.mkdir()
    shutil.copy(cert, folder / "test-ca.pem")
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    assert any(name.name.endswith(".0") for name in folder.iterdir())
    return folder


def _station_calls(cloud: FakeNetatmoCloud) -> int:
    return sum(record.endpoint == "getstationsdata" for record in cloud.requests())


def _service(cloud: FakeNetatmoCloud, url: str, tmp_path: Path, env: dict[str, str],
             exporters: list[ExporterProcess]) -> ExporterProcess:
    token = tmp_path / "token.json"
    seed_token(cloud, token)
    args = exporter_args(cloud, token)
    args[args.index("--api-url") + 1] = url
    process = ExporterProcess(args, tmp_path, env=env)
    exporters.append(process)
    return process.start()


@pytest.mark.parametrize("variable", ["SSL_CERT_DIR", "SSL_CERT_FILE"])
def test_the_service_trusts_what_openssl_is_told_to(
        variable: str, cloud: FakeNetatmoCloud, netatmo_https: tuple[str, Path],
        tmp_path: Path, exporters: list[ExporterProcess]) -> None:
    url, cert = netatmo_https
    store = _hashed_folder(cert, tmp_path / "certs") if variable == "SSL_CERT_DIR" else cert
    service = _service(cloud, url, tmp_path, {variable: str(store)}, exporters)
    text = service.metrics_when(lambda body: UP in body, "netatmo_up 1 over https://")
    assert 'netatmo_sensor_temperature_celsius{' in text
    assert _station_calls(cloud) >= 1


def test_a_certificate_the_system_does_not_trust_is_refused_and_the_token_kept(
        cloud: FakeNetatmoCloud, netatmo_https: tuple[str, Path], tmp_path: Path,
        exporters: list[ExporterProcess]) -> None:
    url, _ = netatmo_https
    service = _service(cloud, url, tmp_path, {}, exporters)
    token_before = (tmp_path / "token.json").read_bytes()
    wait_until("the refusal logged", lambda: "refresh_failed" in service.logs(), 30.0,
               detail=service.logs)
    refusal = next(line for line in service.logs().splitlines() if "refresh_failed" in line)
    assert "its certificate is not trusted (self-signed certificate)" in refusal
    assert "SSL_CERT_FILE or SSL_CERT_DIR" in refusal
    status, text = service.get("/metrics")
    assert status == 200 and "netatmo_up 0.0" in text
    assert _station_calls(cloud) == 0
    assert service.terminate() == 0
    assert (tmp_path / "token.json").read_bytes() == token_before


def test_the_service_reaches_netatmo_through_an_https_proxy(
        cloud: FakeNetatmoCloud, tmp_path: Path, exporters: list[ExporterProcess]) -> None:
    """`HTTPS_PROXY` obeyed, as by the Go exporter (the benchmark reaches it the same way):
    Netatmo's own name, a tunnel through the proxy, the certificate checked."""
    key, cert = self_signed_certificate(tmp_path, "api.netatmo.net")
    with tls_proxy(cloud.port, key, cert) as proxy:
        service = _service(cloud, "https://api.netatmo.net", tmp_path,
                           {"HTTPS_PROXY": proxy, "SSL_CERT_FILE": str(cert), "NO_PROXY": ""},
                           exporters)
        service.metrics_when(lambda body: UP in body, "netatmo_up 1 through the proxy")
    assert _station_calls(cloud) >= 1
