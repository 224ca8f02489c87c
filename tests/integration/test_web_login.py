"""`netatmo-exporter login` as a user on a headless box runs it: the authorize URL goes to
a browser elsewhere (here: an HTTP client at the auto-consenting cloud), the redirected
URL comes back on stdin."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import CLIENT_SECRET, REPO

EXTERNAL = "http://192.0.2.10:9999"


def start_login(cloud: FakeNetatmoCloud, token_path: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "netatmo_exporter", "login",
         *exporter_args(cloud, token_path, "--external-url", EXTERNAL)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    for _ in range(20):
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+/oauth2/authorize\?\S+)", line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise AssertionError("login printed no authorize URL")


def redirected_url(cloud: FakeNetatmoCloud, authorize: str) -> str:
    cloud.auto_consent = True
    answer = httpx.get(authorize, follow_redirects=False, timeout=10.0)
    assert answer.status_code == 302
    return str(answer.headers["location"])


def finish(proc: subprocess.Popen[str], pasted: str) -> tuple[int, str, str]:
    out, err = proc.communicate(pasted + "\n", timeout=30)
    return proc.returncode, out, err


def test_login_writes_the_token_from_the_pasted_redirect(
        cloud: FakeNetatmoCloud, token_path: Path) -> None:
    proc, authorize = start_login(cloud, token_path)
    query = parse_qs(urlsplit(authorize).query)

    code, out, err = finish(proc, redirected_url(cloud, authorize))

    assert code == 0, err
    assert query["redirect_uri"] == [EXTERNAL + "/auth/callback"]
    assert query["scope"] == ["read_station read_homecoach"]
    saved = json.loads(token_path.read_text())
    assert saved["refresh_token"] in cloud.valid_refresh_tokens()
    assert oct(token_path.stat().st_mode & 0o777) == "0o600"
    assert str(token_path) in out
    leaked = [s for s in cloud.issued_secrets() | {CLIENT_SECRET} if s in out + err]
    assert leaked == []


@pytest.mark.parametrize("tamper", ["wrong-state", "no-state", "refused", "garbage"])
def test_login_refuses_an_answer_that_is_not_its_own(
        cloud: FakeNetatmoCloud, token_path: Path, tamper: str) -> None:
    proc, authorize = start_login(cloud, token_path)
    redirected = redirected_url(cloud, authorize)
    pasted = {
        "wrong-state": re.sub(r"state=[^&]+", "state=someone-elses", redirected),
        "no-state": re.sub(r"&?state=[^&]+", "", redirected),
        "refused": EXTERNAL + "/auth/callback?error=access_denied&state=x",
        "garbage": "not a url at all \x01",
    }[tamper]

    code, _, err = finish(proc, pasted)

    assert code == 1
    assert "nothing was written" in err or "malformed" in err
    assert not token_path.exists()
    assert cloud.count("code_grants") == 0
