"""Every writer of the token file against a process renewing from the same file, with a
slow token endpoint (Netatmo rotates the refresh token before its answer arrives): no
refresh token is lost, no renewal is refused, and the newest authorization wins.

The renewing process is `tests/support/token_writer.py` (a backfill beside the service
does the same); the other writer is a second such process (renewals and flushes), the
real `login` command, a paste and the web page's authorization in a running exporter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.adapters.system.logging import SecretRedactor, configure_logging
from netatmo_exporter.adapters.system.token_file import FileTokenStore
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.simulator import FakeNetatmoCloud, Fault
from tests.integration.test_web_auth import Web, consent, form_token, start_web
from tests.integration.test_web_login import finish, redirected_url, start_login
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, REPO, wait_until


class Renewer:
    """A process renewing from the token file until told to stop (a file appears)."""

    def __init__(self, cloud: FakeNetatmoCloud, token_path: Path, *, rounds: int = 100_000,
                 seconds: float = 60.0, pause: float = 0.1) -> None:
        # A pause between rounds: a process that renews back to back holds the file's
        # lock nearly always, and flock promises a waiter no turn.
        self.stop_file = token_path.parent / f"stop-{id(self)}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.token_writer", "--api-url", cloud.base_url,
             "--token-file", str(token_path), "--rounds", str(rounds), "--seconds",
             str(seconds), "--pause", str(pause), "--stop-file", str(self.stop_file)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)})

    def result(self, *, stop: bool = True, timeout: float = 90.0) -> dict[str, object]:
        """Its summary, after telling it to stop (else after its rounds or seconds)."""
        if stop:
            self.stop_file.touch()
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError("the renewing process did not end") from None
        assert self.proc.returncode == 0, err
        result: dict[str, object] = json.loads(out)
        result["stderr"] = err
        return result


def seed(cloud: FakeNetatmoCloud, token_path: Path) -> Token:
    grant = cloud.issue_tokens()
    token = Token.from_grant(str(grant["access_token"]), str(grant["refresh_token"]),
                             float(grant["expires_in"]), time.time(),
                             ("read_station", "read_homecoach")).authorized(time.time())
    FileTokenStore(token_path).save(token)
    return token


def on_disk(token_path: Path) -> Token:
    token = FileTokenStore(token_path).load()
    assert token is not None
    return token


def wait_for_renewals(cloud: FakeNetatmoCloud, count: int, timeout: float = 30.0) -> None:
    target = cloud.count("refresh_grants") + count
    wait_until("renewal (the renewing process stalled)",
               lambda: cloud.count("refresh_grants") >= target, timeout, every=0.02)


def assert_nothing_lost(cloud: FakeNetatmoCloud, token_path: Path) -> Token:
    final = on_disk(token_path)
    assert cloud.count("invalid_grant") == 0
    assert final.refresh_token in cloud.valid_refresh_tokens()
    return final


def test_two_processes_renewing_and_flushing_from_one_file_lose_no_refresh_token(
        cloud: FakeNetatmoCloud, token_path: Path) -> None:
    # Each round renews (or adopts the other's renewal) and flushes; the token endpoint
    # answers only after rotating, so a flush that wrote its stale token in that window
    # would bury the rotated one and the next renewal would meet invalid_grant.
    cloud.set_token_lifetime(2.0)
    cloud.inject("token", Fault.delay(0.005), times=None)
    seed(cloud, token_path)
    first = Renewer(cloud, token_path, rounds=1500, seconds=25.0, pause=0.0)
    second = Renewer(cloud, token_path, rounds=1500, seconds=25.0, pause=0.0)

    results = [first.result(stop=False), second.result(stop=False)]

    renewals = cloud.count("refresh_grants")
    print(f"rounds {[r['rounds'] for r in results]}, renewals {renewals}")
    assert [r["errors"] for r in results] == [{}, {}], [r["stderr"] for r in results]
    assert renewals >= 200
    final = assert_nothing_lost(cloud, token_path)
    # One lineage: its one valid refresh token is the one on disk.
    assert cloud.valid_refresh_tokens() == {final.refresh_token}


def test_pastes_during_renewals_the_newest_authorization_wins(
        cloud: FakeNetatmoCloud, token_path: Path) -> None:
    cloud.set_token_lifetime(2.0)
    cloud.inject("token", Fault.delay(0.05), times=None)
    seed(cloud, token_path)
    renewer = Renewer(cloud, token_path)
    redactor = SecretRedactor()
    client = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock(), attempts=1)
    service = TokenManager(client, FileTokenStore(token_path), SystemClock(),
                           configure_logging("warn", "logfmt", redactor))
    service.load()
    pasted: list[Token] = []
    try:
        for _ in range(8):
            wait_for_renewals(cloud, 2)
            service.authorize_with_refresh_token(cloud.mint_refresh_token())
            pasted.append(on_disk(token_path))
            service.flush()
        wait_for_renewals(cloud, 3)
    finally:
        result = renewer.result()
        client.close()

    assert result["errors"] == {}, result["stderr"]
    final = assert_nothing_lost(cloud, token_path)
    stamps = [token.authorized_at for token in pasted]
    assert None not in stamps and stamps == sorted(stamps) and len(set(stamps)) == 8
    assert final.authorized_at == stamps[-1]
    assert final.renewals >= 3


def test_login_during_renewals_wins_and_the_renewing_process_follows_it(
        cloud: FakeNetatmoCloud, token_path: Path) -> None:
    cloud.set_token_lifetime(2.0)
    cloud.inject("token", Fault.delay(0.3), times=None)  # login's exchange is slow too
    seeded = seed(cloud, token_path)
    renewer = Renewer(cloud, token_path)
    try:
        wait_for_renewals(cloud, 2)
        proc, authorize = start_login(cloud, token_path)
        code, _, err = finish(proc, redirected_url(cloud, authorize))
        assert code == 0, err
        logged_in = on_disk(token_path)
        wait_for_renewals(cloud, 3)
    finally:
        result = renewer.result()

    assert result["errors"] == {}, result["stderr"]
    final = assert_nothing_lost(cloud, token_path)
    assert seeded.authorized_at is not None and logged_in.authorized_at is not None
    assert logged_in.authorized_at > seeded.authorized_at
    assert final.authorized_at == logged_in.authorized_at and final.renewals >= 3


def test_the_web_pages_authorizations_during_another_processs_renewals(
        cloud: FakeNetatmoCloud, token_path: Path, web_factory: list[Web]) -> None:
    # Three writers: the running exporter (its renewals, the callback, the paste), the
    # renewing process, and the exporter's final flush.
    cloud.set_token_lifetime(2.0)
    cloud.inject("token", Fault.delay(0.2), times=None)
    seed(cloud, token_path)
    web = start_web(web_factory, cloud, token_path)
    renewer = Renewer(cloud, token_path)
    stamps = []
    try:
        with web.browser() as browser:
            wait_for_renewals(cloud, 2)
            callback = browser.get(consent(cloud, browser))
            assert callback.status_code in (200, 303), callback.text
            stamps.append(on_disk(token_path).authorized_at)
            wait_for_renewals(cloud, 2)
            paste = browser.post("/auth/settoken", headers={"Origin": web.url}, data={
                "form_token": form_token(browser), "refresh_token": cloud.mint_refresh_token()})
            assert paste.status_code == 303, paste.text
            stamps.append(on_disk(token_path).authorized_at)
            wait_for_renewals(cloud, 3)
        assert web.app.stop()
    finally:
        result = renewer.result()

    assert result["errors"] == {}, result["stderr"]
    final = assert_nothing_lost(cloud, token_path)
    assert None not in stamps and stamps[0] < stamps[1]  # type: ignore[operator]
    assert final.authorized_at == stamps[1]
    assert "invalid_grant" not in web.logs.getvalue()
