"""The status page's rooms table in headless Chromium, against the simulated cloud's
Energy homes (one of which fails), with a screenshot."""

from __future__ import annotations

from pathlib import Path

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.browser.test_browser_auth import auth_state
from tests.browser.webdriver import ChromeDriver
from tests.conftest import exporter_args
from tests.support.harness import ExporterProcess, seed_token

SCOPES = ("read_station", "read_homecoach", "read_thermostat")
WARN = (154, 103, 0)  # --warn in style.css


def test_rooms_table(chromedriver: ChromeDriver, cloud: FakeNetatmoCloud, tmp_path: Path,
                     exporters: list[ExporterProcess], screenshots: Path) -> None:
    seed_token(cloud, tmp_path / "token.json", scope=SCOPES)
    exporter = ExporterProcess(
        exporter_args(cloud, tmp_path / "token.json", "--scope", " ".join(SCOPES)), tmp_path)
    exporters.append(exporter)
    exporter.start(wait_ready=True)
    browser = chromedriver.session(tmp_path / "profile", width=1100, height=900)
    try:
        def rooms_shown() -> bool:
            browser.open(exporter.url + "/#rooms")
            return browser.exists("#rooms tbody tr")

        browser.wait_for(rooms_shown, "the rooms table")
        shot = browser.screenshot(screenshots / "status-rooms.png")

        assert auth_state(browser) == "authorized"
        table = browser.find("#rooms table").text
        assert "Salon" in table and "21.0 °C (schedule)" in table and "40 %" in table
        assert "22.0 °C (boost)" in table
        assert "Vanne bureau: low, 2.45 V (unreachable)" in table
        assert browser.find("tr.window-open .room").text == "Chambre"
        assert _rgb(browser.find("tr.window-open .window").css("color")) == WARN
        assert browser.find("tr.unreachable .room").text == "Bureau"
        assert browser.find("tr.unreachable .temperature").text == "unreachable"
        assert browser.find("tr.no-data .room").text == "Séjour"
        assert "Home Chalet: Netatmo gave no heating state." in browser.find("#rooms").text
        assert "Salon" in browser.find("#stations").text
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    finally:
        browser.quit()


def _rgb(color: str) -> tuple[int, ...]:
    """`rgb(1, 2, 3)` or `rgba(1, 2, 3, 1)` to (1, 2, 3)."""
    return tuple(int(part) for part in color[color.index("(") + 1:-1].split(",")[:3])
