from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.webdriver import ChromeDriver


@pytest.fixture(scope="module")
def chromedriver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromeDriver]:
    """Debian's chromedriver driving Debian's headless Chromium (CI installs both)."""
    logs = tmp_path_factory.mktemp("chromedriver")
    driver = ChromeDriver(logs / "chromedriver.log")
    yield driver
    driver.stop()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: NETATMO_SCREENSHOTS (e.g. docs/screenshots), else tmp."""
    return Path(os.environ.get("NETATMO_SCREENSHOTS") or tmp_path / "screenshots")
