"""A real browser through both ways of authorizing, against the simulated cloud:
the redirect flow with its consent page, and the pasted refresh token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.browser.webdriver import ChromeDriver, Session
from tests.conftest import exporter_args
from tests.support.harness import CLIENT_SECRET, ExporterProcess, metric_value


@pytest.fixture
def browser(chromedriver: ChromeDriver, tmp_path: Path) -> Iterator[Session]:
    session = chromedriver.session(tmp_path / "profile")
    yield session
    session.quit()


def start_exporter(cloud: FakeNetatmoCloud, tmp_path: Path,
                   exporters: list[ExporterProcess]) -> ExporterProcess:
    exporter = ExporterProcess(exporter_args(cloud, tmp_path / "token.json", "--debug-handlers"),
                               tmp_path)
    exporters.append(exporter)
    return exporter.start()


def auth_state(browser: Session) -> str:
    return browser.find("#auth-state").attribute("data-state") or ""


def wait_for_data(browser: Session, exporter: ExporterProcess) -> None:
    def rows_shown() -> bool:
        browser.open(exporter.url + "/")
        return browser.exists("#stations tbody tr")

    browser.wait_for(rows_shown, "the station table")


def assert_nothing_leaked(cloud: FakeNetatmoCloud, exporter: ExporterProcess,
                          browser: Session) -> None:
    seen = [exporter.logs(), browser.source()]
    for path in ("/", "/metrics", "/version", "/debug/data", "/debug/token", "/nowhere"):
        seen.append(exporter.get(path)[1])
    text = "\n".join(seen)
    secrets = cloud.issued_secrets() | {CLIENT_SECRET}
    assert [s for s in secrets if s in text] == []


def test_redirect_flow_with_consent(
        browser: Session, cloud: FakeNetatmoCloud, tmp_path: Path,
        exporters: list[ExporterProcess], screenshots: Path) -> None:
    exporter = start_exporter(cloud, tmp_path, exporters)
    browser.open(exporter.url + "/")
    assert auth_state(browser) == "not-authorized"
    browser.screenshot(screenshots / "status-not-authorized.png")

    browser.find("#authorize").click()
    browser.wait_for(lambda: browser.exists("#accept"), "Netatmo's consent page")
    assert browser.current_url.startswith(cloud.base_url + "/oauth2/authorize")
    browser.find("#accept").click()
    browser.wait_for(lambda: browser.current_url.startswith(exporter.url + "/?done="),
                     "the way back to the exporter")

    assert auth_state(browser) == "authorized"
    assert "Authorized. The first data arrives" in browser.find("#done").text
    exporter.wait_for("/-/ready")
    assert metric_value(exporter.get("/metrics")[1], "netatmo_up") == 1.0
    wait_for_data(browser, exporter)
    assert "Salon" in browser.find("#stations").text
    browser.screenshot(screenshots / "status-authorized.png")
    assert cloud.count("consent_accepted") == 1
    assert_nothing_leaked(cloud, exporter, browser)


def test_pasted_refresh_token(
        browser: Session, cloud: FakeNetatmoCloud, tmp_path: Path,
        exporters: list[ExporterProcess], screenshots: Path) -> None:
    exporter = start_exporter(cloud, tmp_path, exporters)
    browser.open(exporter.url + "/")
    browser.find("#refresh-token").type(cloud.mint_refresh_token())
    browser.screenshot(screenshots / "paste-refresh-token.png")
    browser.find("#settoken").click()
    browser.wait_for(lambda: browser.current_url.startswith(exporter.url + "/?done=token"),
                     "the status page after the form")

    assert auth_state(browser) == "authorized"
    exporter.wait_for("/-/ready")
    assert metric_value(exporter.get("/metrics")[1], "netatmo_up") == 1.0

    browser.open(exporter.url + "/")
    browser.find("#paste summary").click()
    browser.find("#refresh-token").type("spent|00000000000000000000")
    browser.find("#settoken").click()
    browser.wait_for(lambda: browser.exists("#message"), "the refusal page")
    assert "current authorization is unchanged" in browser.find("#message").text
    browser.screenshot(screenshots / "paste-refused.png")
    browser.open(exporter.url + "/")
    assert auth_state(browser) == "authorized"
    assert_nothing_leaked(cloud, exporter, browser)


def test_phone_sized_status_page(
        chromedriver: ChromeDriver, cloud: FakeNetatmoCloud, tmp_path: Path,
        exporters: list[ExporterProcess], screenshots: Path) -> None:
    from tests.support.harness import seed_token

    seed_token(cloud, tmp_path / "token.json")
    exporter = start_exporter(cloud, tmp_path, exporters)
    exporter.wait_for("/-/ready")
    phone = chromedriver.session(tmp_path / "phone", width=390, height=1800)
    try:
        wait_for_data(phone, exporter)
        assert auth_state(phone) == "authorized"
        assert phone.find("#redirect-uri").attribute("value") == exporter.url + "/auth/callback"
        phone.screenshot(screenshots / "status-phone.png")
    finally:
        phone.quit()


def test_first_run_from_a_lan_browser_and_a_rebinding_name(
        chromedriver: ChromeDriver, cloud: FakeNetatmoCloud, tmp_path: Path,
        exporters: list[ExporterProcess], screenshots: Path) -> None:
    """The browser reaches the box by its LAN name (mapped to loopback inside Chromium, as
    the LAN's DNS would), without --external-url: the redirect comes back to that name.
    Another name pointed at the same address, as a DNS-rebinding page would be, gets
    nothing but the explanation."""
    exporter = ExporterProcess(exporter_args(cloud, tmp_path / "token.json",
                                             "--web.allowed-hosts", "nas-box.test"), tmp_path)
    exporters.append(exporter)
    exporter.start()
    lan = f"http://nas-box.test:{exporter.port}"
    session = chromedriver.session(
        tmp_path / "lan-profile",
        extra_args=("--host-resolver-rules=MAP nas-box.test 127.0.0.1, "
                    "MAP rebind.attacker.test 127.0.0.1",))
    try:
        session.open(f"http://rebind.attacker.test:{exporter.port}/")
        refused = session.source()
        session.screenshot(screenshots / "host-refused.png")

        session.open(lan + "/")
        assert session.find("#redirect-uri").attribute("value") == lan + "/auth/callback"
        session.find("#authorize").click()
        session.wait_for(lambda: session.exists("#accept"), "Netatmo's consent page")
        session.find("#accept").click()
        session.wait_for(lambda: session.current_url.startswith(lan + "/?done="),
                         "the way back to the LAN address")
        assert auth_state(session) == "authorized"
    finally:
        session.quit()

    assert "Unknown host name" in refused and "--web.allowed-hosts" in refused
    assert "Salon" not in refused
    assert cloud.count("code_grants") == 1
