from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.test_web_auth import Web


@pytest.fixture
def web_factory() -> Iterator[list[Web]]:
    """In-process exporters a test starts with `start_web`; each stopped at the end."""
    started: list[Web] = []
    yield started
    for web in started:
        web.app.stop()
