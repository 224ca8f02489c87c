"""Host names, basic authentication and the LAN first run, over real HTTP on loopback."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx
import pytest

from netatmo_exporter.entrypoints.config import ConfigError, load_config
from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.integration.test_web_auth import Web, start_web, wait_until_up
from tests.support.harness import seed_token, wait_until

PAGES = ("/", "/auth/authorize", "/auth/callback?code=x&state=y", "/debug/data",
         "/debug/token")
ANY_HOST = ("/metrics", "/-/healthy", "/-/ready", "/version", "/static/style.css")


def _get(web: Web, path: str, host: str, **headers: str) -> httpx.Response:
    return httpx.get(web.url + path, headers={"Host": host, **headers}, timeout=10.0,
                     follow_redirects=False)


# -- DNS rebinding ------------------------------------------------------------------------

def test_foreign_host_names_get_no_page_and_learn_the_setting(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> None:
    seed_token(cloud, token_path)
    web = start_web(web_factory, cloud, token_path, "--debug-handlers")
    wait_until_up(web)
    before = token_path.read_bytes()

    refused = {path: _get(web, path, "rebind.attacker.example:9210") for path in PAGES}
    answered = {path: _get(web, path, "rebind.attacker.example:9210") for path in ANY_HOST}
    posted = httpx.post(web.url + "/auth/settoken", data={"refresh_token": "abcd"},
                        headers={"Host": "rebind.attacker.example",
                                 "Origin": "http://rebind.attacker.example"}, timeout=10.0)

    for path, answer in refused.items():
        assert answer.status_code == 421, path
        assert "--web.allowed-hosts" in answer.text, path
        assert "NETATMO_EXPORTER_ALLOWED_HOSTS" in answer.text, path
        assert "Lyon" not in answer.text and str(token_path) not in answer.text, path
        assert answer.headers["x-frame-options"] == "DENY"
    for path, answer in answered.items():
        assert answer.status_code == 200, path
    assert "netatmo_up 1.0" in answered["/metrics"].text
    assert answered["/metrics"].headers["x-content-type-options"] == "nosniff"
    assert posted.status_code == 421
    assert token_path.read_bytes() == before
    assert "event=host_refused host=rebind.attacker.example" in web.logs.getvalue()


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]:9210", "192.168.1.20:9210", "localhost",
                                  "LOCALHOST:9210", "nas.lan", "nas.lan.:9210", "grafana.lan"])
def test_ip_literals_localhost_and_listed_names_get_the_pages(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path, host: str) -> None:
    web = start_web(web_factory, cloud, token_path,
                    "--web.allowed-hosts", "nas.lan, grafana.lan")

    answer = _get(web, "/", host)

    assert answer.status_code == 200
    assert 'id="auth-state"' in answer.text


def test_allowed_hosts_from_the_environment_and_bad_names_refused(
        cloud: FakeNetatmoCloud, token_path: Path) -> None:
    args = exporter_args(cloud, token_path)
    config = load_config(args, {"NETATMO_EXPORTER_ALLOWED_HOSTS": "nas.lan,box"})
    assert config.allowed_hosts == ("nas.lan", "box")
    with pytest.raises(ConfigError, match=r"--web.allowed-hosts \(NETATMO_EXPORTER_ALLOWED"):
        load_config([*args, "--web.allowed-hosts", "nas.lan,evil/path"], {})


# -- first run from a LAN browser ---------------------------------------------------------

def test_without_external_url_the_redirect_follows_the_browsers_address(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> None:
    web = start_web(web_factory, cloud, token_path)
    port = int(web.app.server.server_address[1])
    lan_host = f"localhost:{port}"  # stands for http://<box>:9210 typed on another machine
    cloud.auto_consent = True
    with httpx.Client(base_url=web.url, headers={"Host": lan_host}, timeout=10.0) as browser:
        status_page = browser.get("/")
        authorize = browser.get("/auth/authorize")
        query = {k: v[0] for k, v in
                 parse_qs(urlsplit(authorize.headers["location"]).query).items()}
        consent = httpx.get(authorize.headers["location"], follow_redirects=False, timeout=10.0)
        location = urlsplit(consent.headers["location"])
        # The callback arrives under the address Netatmo redirected the browser to.
        callback = browser.get(f"{location.path}?{location.query}")

    expected = f"http://{lan_host}/auth/callback"
    assert f'value="{expected}"' in status_page.text  # the URI to register, shown
    assert 'id="host-mismatch"' not in status_page.text
    assert query["redirect_uri"] == expected
    assert f"{location.scheme}://{location.netloc}" == f"http://{lan_host}"
    assert callback.status_code == 303, callback.text
    assert cloud.count("code_grants") == 1 and cloud.count("invalid_grant") == 0
    wait_until_up(web)


def test_the_code_is_exchanged_with_the_uri_the_authorization_started_with(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> None:
    web = start_web(web_factory, cloud, token_path)
    port = int(web.app.server.server_address[1])
    cloud.auto_consent = True
    with httpx.Client(base_url=web.url, timeout=10.0) as browser:
        authorize = browser.get("/auth/authorize", headers={"Host": f"localhost:{port}"})
        consent = httpx.get(authorize.headers["location"], follow_redirects=False, timeout=10.0)
        location = urlsplit(consent.headers["location"])
        # Finished under another accepted name: the exchange still names the first URI.
        callback = browser.get(f"{location.path}?{location.query}",
                               headers={"Host": f"127.0.0.1:{port}"})

    assert callback.status_code == 303, callback.text
    assert cloud.count("code_grants") == 1 and cloud.count("invalid_grant") == 0


def test_a_configured_external_url_still_wins(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> None:
    web = start_web(web_factory, cloud, token_path, "--external-url", "https://netatmo.example",
                    "--web.allowed-hosts", "nas.lan")
    with httpx.Client(base_url=web.url, timeout=10.0) as browser:
        warned = browser.get("/auth/authorize", headers={"Host": "nas.lan:9210"})
        anyway = browser.get("/auth/authorize?anyway=1", headers={"Host": "nas.lan:9210"})
        status = browser.get("/", headers={"Host": "nas.lan:9210"})

    query = parse_qs(urlsplit(anyway.headers["location"]).query)
    assert warned.status_code == 200 and "--external-url" in warned.text
    assert query["redirect_uri"] == ["https://netatmo.example/auth/callback"]
    assert 'id="host-mismatch"' in status.text
    assert 'value="https://netatmo.example/auth/callback"' in status.text


# -- basic authentication -----------------------------------------------------------------

@pytest.fixture(scope="module")
def hashed() -> str:
    return bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode()


def _web_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def test_basic_auth_guards_every_path_but_healthy(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path,
        hashed: str) -> None:
    seed_token(cloud, token_path)
    config = _web_config(tmp_path, f"basic_auth_users:\n  prometheus: {hashed}\n")
    web = start_web(web_factory, cloud, token_path, "--web.config.file", str(config))
    good = ("prometheus", "scrape-pass")

    anonymous = {path: httpx.get(web.url + path, timeout=10.0)
                 for path in ("/", "/metrics", "/-/ready", "/version", "/auth/authorize")}
    wrong = httpx.get(web.url + "/metrics", auth=("prometheus", "guess-1"), timeout=10.0)
    unknown = httpx.get(web.url + "/metrics", auth=("nobody", "scrape-pass"), timeout=10.0)
    healthy = httpx.get(web.url + "/-/healthy", timeout=10.0)
    def up() -> httpx.Response | None:
        answer = httpx.get(web.url + "/metrics", auth=good, timeout=10.0)
        return answer if "netatmo_up 1.0" in answer.text else None
    scrape = wait_until("netatmo_up 1.0", up, 15.0)
    page = httpx.get(web.url + "/", auth=good, timeout=10.0)

    for path, answer in anonymous.items():
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"].startswith('Basic realm="netatmo-exporter"')
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert wrong.status_code == 401 and unknown.status_code == 401
    assert healthy.status_code == 200
    assert scrape.status_code == 200 and page.status_code == 200
    assert 'id="open-to-lan"' not in page.text
    logs = web.logs.getvalue()
    assert "event=basic_auth_refused user=prometheus" in logs
    assert "event=basic_auth_refused user=nobody" in logs
    assert "guess-1" not in logs and "scrape-pass" not in logs
    assert "event=basic_auth_enabled users=1 " in logs and hashed not in logs


def test_without_a_password_the_status_page_says_anyone_on_the_lan_may_authorize(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> None:
    web = start_web(web_factory, cloud, token_path)

    page = httpx.get(web.url + "/", timeout=10.0)

    note = page.text.partition('id="open-to-lan"')[2].partition("</p>")[0]
    assert "anyone on your network" in note and "another Netatmo account" in note
    assert "netatmo-exporter web-user" in note and "--web.config.file" in note


@pytest.mark.parametrize(("text", "key"), [
    ("basic_auth_user:\n  a: b\n", "basic_auth_user"),
    ("basic_auth_users:\n  prometheus: plain-text-password\n", "basic_auth_users.prometheus"),
    ("basic_auth_users:\n  prometheus: $2b$10$tooshort\n", "basic_auth_users.prometheus"),
    ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", "tls_server_config"),
    ("http_server_config:\n  headerz: {}\n", "http_server_config.headerz"),
    ("http_server_config:\n  headers:\n    Content-Length: '3'\n",
     "http_server_config.headers.Content-Length"),
    ("basic_auth_users: [a, b]\n", "basic_auth_users"),
    ("- just\n- a list\n", ""),
    ("basic_auth_users: {a: [unclosed\n", ""),
])
def test_bad_web_config_files_are_errors_naming_the_file_and_key(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path, text: str, key: str) -> None:
    path = _web_config(tmp_path, text)

    with pytest.raises(ConfigError) as raised:
        load_config([*exporter_args(cloud, token_path), "--web.config.file", str(path)], {})

    message = str(raised.value)
    assert message.startswith("--web.config.file (NETATMO_EXPORTER_WEB_CONFIG): ")
    assert f"{path}: {key}: " in message if key else f"{path}: " in message
    assert "\n" not in message


def test_missing_web_config_file_and_configured_headers(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config([*exporter_args(cloud, token_path),
                     "--web.config.file", str(tmp_path / "absent.yml")], {})
    path = _web_config(tmp_path, "http_server_config:\n  http2: true\n  headers:\n"
                                 "    Strict-Transport-Security: max-age=31536000\n")
    web = start_web(web_factory, cloud, token_path, "--web.config.file", str(path))

    answer = httpx.get(web.url + "/metrics", timeout=10.0)

    assert answer.status_code == 200
    assert answer.headers["strict-transport-security"] == "max-age=31536000"


def test_a_browsers_parallel_requests_share_one_password_check(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path
) -> None:
    """A page and its stylesheet, sent at once with a credential not checked yet: the
    second waits for the first one's bcrypt check instead of getting a 429."""
    slow_hash = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=12)).decode()
    path = _web_config(tmp_path, f"basic_auth_users:\n  owner: {slow_hash}\n")
    web = start_web(web_factory, cloud, token_path, "--web.config.file", str(path))

    with ThreadPoolExecutor(2) as browser:
        answers = list(browser.map(
            lambda page: httpx.get(web.url + page, auth=("owner", "scrape-pass"),
                                   timeout=30.0).status_code, ["/", "/static/style.css"]))

    assert answers == [200, 200]


def test_a_password_flood_leaves_scrapes_with_the_known_password_answering(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path
) -> None:
    slow_hash = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=12)).decode()
    path = _web_config(tmp_path, f"basic_auth_users:\n  prometheus: {slow_hash}\n")
    web = start_web(web_factory, cloud, token_path, "--web.config.file", str(path))
    good = ("prometheus", "scrape-pass")
    assert httpx.get(web.url + "/metrics", auth=good, timeout=30.0).status_code == 200

    def guess(attempt: int) -> int:
        return httpx.get(web.url + "/metrics", auth=("prometheus", f"guess-{attempt}"),
                         timeout=30.0).status_code

    with ThreadPoolExecutor(4) as attackers, httpx.Client(timeout=30.0) as prometheus:
        guesses = [attackers.submit(guess, attempt) for attempt in range(24)]
        scrapes = [prometheus.get(web.url + "/metrics", auth=good).status_code
                   for _ in range(10)]
        statuses = [future.result() for future in guesses]

    # One bcrypt check at a time: concurrent guesses are turned away, never let in.
    assert set(statuses) == {401, 429}
    assert scrapes == [200] * 10


def test_forwarded_headers_from_the_lan_are_not_trusted(
        web_factory: list[Web], cloud: FakeNetatmoCloud, token_path: Path) -> None:
    web = start_web(web_factory, cloud, token_path)
    host = web.url.removeprefix("http://")

    page = _get(web, "/", host, **{"X-Forwarded-Host": "rebind.attacker.example",
                                   "X-Forwarded-Proto": "https"})

    assert page.status_code == 200
    assert f'value="http://{host}/auth/callback"' in page.text
    assert "rebind.attacker.example" not in page.text
