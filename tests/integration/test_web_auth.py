"""The web UI's authorization paths over real HTTP, against the simulated cloud.

The exporter runs in-process (build_app, real sockets on loopback) with a clock the test
can move, so that a state can expire without waiting.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from netatmo_exporter.entrypoints.bootstrap import Application, build_app
from netatmo_exporter.entrypoints.config import load_config
from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import CLIENT_SECRET, free_port, metric_value, seed_token, wait_until

SECURITY_HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options",
                    "referrer-policy")


class MovableClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@dataclass
class Web:
    app: Application
    clock: MovableClock
    logs: io.StringIO
    token_path: Path

    @property
    def url(self) -> str:
        return self.app.url

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=10.0)


def start_web(started: list[Web], cloud: FakeNetatmoCloud, token_path: Path,
              *extra: str) -> Web:
    config = load_config(["--addr", f"127.0.0.1:{free_port()}",
                          *exporter_args(cloud, token_path, *extra)], {})
    clock = MovableClock()
    logs = io.StringIO()
    app = build_app(config, clock=clock, log_stream=logs)
    app.start()
    web = Web(app, clock, logs, token_path)
    started.append(web)
    return web


@pytest.fixture
def web(web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> Web:
    return start_web(web_factory, cloud, token_path, "--debug-handlers")


def begin_authorization(browser: httpx.Client) -> dict[str, str]:
    """`/auth/authorize` as a browser follows it; returns the query sent to Netatmo."""
    answer = browser.get("/auth/authorize")
    assert answer.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}


def consent(cloud: FakeNetatmoCloud, browser: httpx.Client) -> str:
    """Accept at the (auto-consenting) cloud; returns the callback path and query."""
    cloud.auto_consent = True
    authorize = browser.get("/auth/authorize").headers["location"]
    redirect = httpx.get(authorize, follow_redirects=False, timeout=10.0)
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["location"])
    return f"{location.path}?{location.query}"


def form_token(browser: httpx.Client) -> str:
    page = browser.get("/")
    match = re.search(r'name="form_token" value="([0-9a-f]+)"', page.text)
    assert match is not None
    return match.group(1)


def wait_until_up(web: Web, deadline_s: float = 15.0) -> str:
    def up() -> str | None:
        body = httpx.get(web.url + "/metrics", timeout=5.0).text
        return body if metric_value(body, "netatmo_up") == 1.0 else None
    return wait_until("netatmo_up 1", up, deadline_s, detail=web.logs.getvalue)


def test_authorize_binds_a_fresh_state_to_the_browser(web: Web, cloud: FakeNetatmoCloud
                                                      ) -> None:
    with web.browser() as browser:
        answer = browser.get("/auth/authorize")
        second = begin_authorization(browser)

    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    assert answer.headers["location"].startswith(cloud.base_url + "/oauth2/authorize?")
    assert query["redirect_uri"] == web.url + "/auth/callback"
    assert query["client_id"] == "test-client"
    assert query["response_type"] == "code"
    assert query["scope"] == "read_station read_homecoach"
    assert len(query["state"]) >= 40 and query["state"] != second["state"]
    cookie = answer.headers["set-cookie"]
    assert f"netatmo_exporter_state={query['state']}" in cookie
    for attribute in ("HttpOnly", "Path=/auth", "SameSite=lax", "Max-Age=600"):
        assert attribute.lower() in cookie.lower()


def test_code_flow_persists_the_token_before_redirecting_home(
        web: Web, cloud: FakeNetatmoCloud) -> None:
    with web.browser() as browser:
        callback = browser.get(consent(cloud, browser))
        assert callback.status_code == 303
        assert callback.headers["location"] == "/?done=authorized"
        assert json.loads(web.token_path.read_text())["refresh_token"] in \
            cloud.valid_refresh_tokens()
        wait_until_up(web)
        page = browser.get(callback.headers["location"]).text

    assert 'data-state="authorized"' in page
    assert "Authorized. The first data arrives" in page
    assert cloud.count("code_grants") == 1


@pytest.mark.parametrize("tamper", ["wrong", "missing", "other-browser"])
def test_callback_refuses_a_state_that_does_not_match(
        web: Web, cloud: FakeNetatmoCloud, tamper: str) -> None:
    with web.browser() as browser:
        path = consent(cloud, browser)
        if tamper == "wrong":
            path = re.sub(r"state=[^&]+", "state=forged-state-value", path)
        elif tamper == "missing":
            path = re.sub(r"&?state=[^&]+", "", path)
        client = web.browser() if tamper == "other-browser" else browser
        answer = client.get(path)
        if client is not browser:
            client.close()  # the server keeps connections alive: close the second browser

    assert answer.status_code == 400
    assert "Nothing changed" in answer.text
    assert not web.token_path.exists()
    assert cloud.count("code_grants") == 0


def test_callback_refuses_a_replayed_state(web: Web, cloud: FakeNetatmoCloud) -> None:
    with web.browser() as browser:
        path = consent(cloud, browser)
        cookie = browser.cookies.get("netatmo_exporter_state")
        assert browser.get(path).status_code == 303
        saved = web.token_path.read_text()
        browser.cookies.set("netatmo_exporter_state", cookie or "", path="/auth")
        replay = browser.get(path)

    assert replay.status_code == 400
    assert "already used" in replay.text
    assert web.token_path.read_text() == saved
    assert cloud.count("code_grants") == 1


def test_callback_refuses_an_expired_state(web: Web, cloud: FakeNetatmoCloud) -> None:
    with web.browser() as browser:
        path = consent(cloud, browser)
        web.clock.offset += 601
        answer = browser.get(path)

    assert answer.status_code == 400
    assert "too late" in answer.text
    assert not web.token_path.exists()
    assert cloud.count("code_grants") == 0


def test_refusal_on_netatmos_page_shows_a_clear_page(web: Web, cloud: FakeNetatmoCloud
                                                     ) -> None:
    with web.browser() as browser:
        authorize = browser.get("/auth/authorize").headers["location"]
        consent_page = httpx.get(authorize, timeout=10.0).text
        request_id = re.search(r'name="request_id" value="([^"]+)"', consent_page)
        assert request_id is not None
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                 consent_page))
        refused = httpx.post(cloud.base_url + "/oauth2/authorize/decision",
                             data={**fields, "decision": "refuse"}, timeout=10.0)
        location = urlsplit(refused.headers["location"])
        assert "error=access_denied" in location.query
        answer = browser.get(f"{location.path}?{location.query}")

    assert answer.status_code == 403
    assert "Authorization refused" in answer.text
    assert not web.token_path.exists()


def test_pasted_refresh_token_replaces_nothing_until_netatmo_accepts_it(
        web: Web, cloud: FakeNetatmoCloud) -> None:
    with web.browser() as browser:
        good = browser.post("/auth/settoken", headers={"Origin": web.url}, data={
            "form_token": form_token(browser), "refresh_token": cloud.mint_refresh_token()})
        assert good.status_code == 303
        wait_until_up(web)
        saved = web.token_path.read_text()

        bad = browser.post("/auth/settoken", headers={"Origin": web.url}, data={
            "form_token": form_token(browser), "refresh_token": "spent|0123456789abcdef"})
        metrics = wait_until_up(web)

    assert bad.status_code == 400
    assert "current authorization is unchanged" in bad.text
    assert web.token_path.read_text() == saved
    assert web.app.tokens.authorized
    assert metric_value(metrics, "netatmo_up") == 1.0


@pytest.mark.parametrize("case", ["evil-origin", "evil-referer", "no-origin", "no-form-token",
                                  "foreign-form-token"])
def test_cross_site_posts_are_refused(web: Web, cloud: FakeNetatmoCloud, case: str) -> None:
    refresh_token = cloud.mint_refresh_token()
    with web.browser() as browser:
        token = form_token(browser)
        headers = {"Origin": web.url}
        data = {"form_token": token, "refresh_token": refresh_token}
        if case == "evil-origin":
            headers = {"Origin": "http://evil.example"}
        elif case == "evil-referer":
            headers = {"Referer": "http://evil.example/page"}
        elif case == "no-origin":
            headers = {}
        elif case == "no-form-token":
            del data["form_token"]
        else:
            with web.browser() as other:
                data["form_token"] = form_token(other)
        answer = browser.post("/auth/settoken", headers=headers, data=data)

    assert answer.status_code == 403
    assert "Nothing changed" in answer.text
    assert not web.token_path.exists()
    assert refresh_token in cloud.valid_refresh_tokens()


def test_oversized_and_wrong_method_requests_get_4xx(web: Web) -> None:
    with web.browser() as browser:
        token = form_token(browser)
        big = browser.post("/auth/settoken", headers={"Origin": web.url},
                           data={"form_token": token, "refresh_token": "a" * 20000})
        huge_claim = browser.post("/auth/settoken", headers={
            "Origin": web.url, "Content-Type": "application/x-www-form-urlencoded"},
            content=b"refresh_token=" + b"b" * 9000)
        get = browser.get("/auth/settoken")

    assert big.status_code == 413
    assert huge_claim.status_code == 413
    assert get.status_code == 405
    for answer in (big, get):
        assert all(name in answer.headers for name in SECURITY_HEADERS)
    assert not web.token_path.exists()


@pytest.mark.parametrize("target", [
    "/auth/callback?state=%ff%fe&code=%00",
    "/auth/callback?code=abc&state=" + "x" * 5000,
    "/auth/callback?state=a&state=b&code=%zz",
    "/auth/callback?%%%",
    "/?done=%ff",
    "/nowhere?x=%",
])
def test_malformed_queries_never_reach_500(web: Web, target: str) -> None:
    answer = httpx.get(web.url + target, timeout=10.0)

    assert 200 <= answer.status_code < 500
    assert "Traceback" not in answer.text
    assert all(name in answer.headers for name in SECURITY_HEADERS)
    assert not web.token_path.exists()


def test_debug_handlers_exist_only_when_enabled(
        web_factory: list[Web], cloud: FakeNetatmoCloud, tmp_path: Path) -> None:
    plain = start_web(web_factory, cloud, tmp_path / "plain.json")

    assert httpx.get(plain.url + "/debug/data", timeout=5).status_code == 404
    assert httpx.get(plain.url + "/debug/token", timeout=5).status_code == 404


def test_debug_token_tells_facts_and_debug_data_spends_no_call(
        web: Web, cloud: FakeNetatmoCloud) -> None:
    seed_token(cloud, web.token_path)
    web.app.tokens.load()
    web.app.refresher.loop.wake()
    wait_until_up(web)
    calls = cloud.count("getstationsdata")

    facts = httpx.get(web.url + "/debug/token", timeout=5).json()
    data = httpx.get(web.url + "/debug/data", timeout=5).json()

    assert facts["valid"] is True and facts["has_refresh_token"] is True
    assert facts["state"] == "ok" and facts["expires_in_seconds"] > 0
    assert data["snapshot"]["stations"]
    assert cloud.count("getstationsdata") == calls


def test_no_token_or_secret_in_logs_pages_or_metrics(web: Web, cloud: FakeNetatmoCloud
                                                     ) -> None:
    with web.browser() as browser:
        assert browser.get(consent(cloud, browser)).status_code == 303
        wait_until_up(web)
        browser.post("/auth/settoken", headers={"Origin": web.url}, data={
            "form_token": form_token(browser), "refresh_token": cloud.mint_refresh_token()})
        browser.post("/auth/settoken", headers={"Origin": web.url}, data={
            "form_token": form_token(browser), "refresh_token": "bad|token-value-123"})
        web.app.refresher.loop.wake()
        wait_until_up(web)
        pages = [browser.get(path) for path in (
            "/", "/?done=token", "/version", "/debug/data", "/debug/token", "/-/ready",
            "/-/healthy", "/metrics", "/nowhere", "/auth/settoken",
            "/auth/callback?state=x&code=y", "/auth/callback?error=access_denied")]

    text = "\n".join(f"{p.headers}\n{p.text}" for p in pages) + web.logs.getvalue()
    secrets = cloud.issued_secrets() | {CLIENT_SECRET}
    assert len(secrets) >= 5
    assert [s for s in secrets if s in text] == []
    assert "refresh_token_refused" in web.logs.getvalue()
