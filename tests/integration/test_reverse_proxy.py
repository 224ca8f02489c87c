"""docs/reverse-proxy.md's nginx block, run as written (ports and certificate paths put
on loopback), in front of a real exporter: TLS, the Host passed on, bodies capped."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import (
    REPO,
    ExporterProcess,
    free_port,
    seed_token,
    self_signed_certificate,
    wait_until,
)

NAME = "netatmo.example.org"


def _nginx_block() -> str:
    text = (REPO / "docs" / "reverse-proxy.md").read_text()
    match = re.search(r"```nginx\n(.*?)```", text, re.S)
    assert match is not None, "docs/reverse-proxy.md has no nginx block"
    return match.group(1)


@pytest.fixture
def proxied(cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
            exporters: list[ExporterProcess]) -> Iterator[tuple[int, ssl.SSLContext]]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is not installed (scripts/test installs it)"
    seed_token(cloud, token_path)
    exporter = ExporterProcess(exporter_args(cloud, token_path, "--refresh-interval", "1h",
                                             "--external-url", f"https://{NAME}"), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)
    key, cert = self_signed_certificate(tmp_path, NAME)
    port = free_port()
    block = (_nginx_block()
             .replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
             .replace("listen [::]:443 ssl;", "")
             .replace(f"/etc/ssl/certs/{NAME}.pem", str(cert))
             .replace(f"/etc/ssl/private/{NAME}.key", str(key))
             .replace("127.0.0.1:9210", f"127.0.0.1:{exporter.port}"))
    assert str(cert) in block and f"127.0.0.1:{exporter.port}" in block
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\n"
                    f"error_log {tmp_path}/nginx-error.log;\nevents {{}}\n"
                    f"http {{\naccess_log off;\nclient_body_temp_path {tmp_path}/body;\n"
                    f"proxy_temp_path {tmp_path}/proxy;\n{block}\n}}\n")
    trust = ssl.create_default_context(cafile=str(cert))
    proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def answers() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            httpx.get(f"https://127.0.0.1:{port}/-/healthy", verify=trust, timeout=1.0)
            return True
        wait_until("nginx started", answers, 15.0, every=0.1,
                   ignoring=(httpx.TransportError,))
        yield port, trust
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_the_documented_nginx_block_serves_the_exporter_over_tls(
        proxied: tuple[int, ssl.SSLContext]) -> None:
    port, trust = proxied
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust, timeout=10.0,
                      headers={"Host": NAME}) as browser:
        metrics = browser.get("/metrics")
        page = browser.get("/")
        big = browser.post("/auth/settoken", content=b"refresh_token=" + b"a" * 20000,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        foreign = browser.get("/", headers={"Host": "rebind.attacker.example"})

    assert metrics.status_code == 200 and "netatmo_up 1.0" in metrics.text
    assert page.status_code == 200
    assert f"https://{NAME}/auth/callback" in page.text
    assert big.status_code == 413
    assert foreign.status_code == 421
