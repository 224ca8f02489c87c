"""A refresh answer that is slow but arrives is worth waiting for: once Netatmo has rotated
the refresh token, giving up on the answer would cost the authorization."""

from __future__ import annotations

import httpx
import pytest

from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.domain.errors import TransientError
from netatmo_exporter.simulator import FakeNetatmoCloud, Fault
from tests.support.harness import CLIENT_ID, CLIENT_SECRET


def test_token_endpoint_waits_longer_than_data_endpoints(cloud: FakeNetatmoCloud) -> None:
    client = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock(),
                           timeout=httpx.Timeout(0.4, connect=2.0), attempts=1)
    try:
        cloud.inject("token", Fault.delay(0.8), times=1)
        token = client.refresh(cloud.mint_refresh_token())
        assert token.refresh_token in cloud.valid_refresh_tokens()

        cloud.inject("getstationsdata", Fault.delay(0.8), times=1)
        with pytest.raises(TransientError, match="no answer in time"):
            client.fetch_stations(token.access_token, favorites=False)
    finally:
        client.close()
