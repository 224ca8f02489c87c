"""NetatmoClient over real HTTP against the simulated cloud: errors land in the right
domain error with a clear message, and tokens travel only in headers and form bodies."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.domain.errors import (
    AccessTokenRejected,
    ApiError,
    BadResponse,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    MissingScope,
    NetatmoError,
    RateLimited,
    TransientError,
)
from netatmo_exporter.simulator import FakeNetatmoCloud, Fault
from tests.support.harness import CLIENT_ID, CLIENT_SECRET, in_background, wait_until


@pytest.fixture
def client(cloud: FakeNetatmoCloud) -> Iterator[NetatmoClient]:
    sleeps: list[float] = []
    netatmo = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock(),
                            sleep=sleeps.append)
    yield netatmo
    netatmo.close()


def assert_clean(exc: NetatmoError, cloud: FakeNetatmoCloud) -> None:
    text = f"{exc} {exc!r}"
    assert [s for s in cloud.issued_secrets() if s in text] == []
    assert len(str(exc)) > 20


def test_refresh_rotates_and_returns_a_full_token(
    cloud: FakeNetatmoCloud, client: NetatmoClient
) -> None:
    old = cloud.mint_refresh_token()

    token = client.refresh(old)

    assert token.refresh_token in cloud.valid_refresh_tokens()
    assert old not in cloud.valid_refresh_tokens()
    assert token.access_token in cloud.valid_access_tokens()
    assert token.lifetime == 10800
    assert token.scope == ("read_station", "read_homecoach")
    expires_at = token.expires_at()
    assert expires_at is not None and abs(expires_at - (time.time() + 10800)) < 60


def test_spent_refresh_token_is_invalid_grant(
    cloud: FakeNetatmoCloud, client: NetatmoClient
) -> None:
    old = cloud.mint_refresh_token()
    client.refresh(old)

    with pytest.raises(InvalidGrant) as caught:
        client.refresh(old)

    assert "authorize again" in str(caught.value)
    assert_clean(caught.value, cloud)


def test_wrong_secret_is_invalid_client(cloud: FakeNetatmoCloud) -> None:
    netatmo = NetatmoClient(cloud.base_url, CLIENT_ID, "wrong-secret-value", SystemClock())
    try:
        with pytest.raises(InvalidClient) as caught:
            netatmo.refresh(cloud.mint_refresh_token())
    finally:
        netatmo.close()

    assert "--client-secret" in str(caught.value)
    assert "wrong-secret-value" not in str(caught.value)


@pytest.mark.parametrize(("fault", "error", "words"), [
    (Fault.oauth_error("invalid_grant"), InvalidGrant, "invalid_grant"),
    (Fault.oauth_error("invalid_client"), InvalidClient, "invalid_client"),
    (Fault.oauth_error("invalid_request"), InvalidRequest, "invalid_request"),
    (Fault.rate_limited(429), RateLimited, "rate limited"),
])
def test_token_endpoint_errors(
    cloud: FakeNetatmoCloud, client: NetatmoClient, fault: Fault,
    error: type[NetatmoError], words: str
) -> None:
    refresh_token = cloud.mint_refresh_token()
    cloud.inject("token", fault)

    with pytest.raises(error) as caught:
        client.refresh(refresh_token)

    assert words in str(caught.value)
    assert_clean(caught.value, cloud)
    assert refresh_token in cloud.valid_refresh_tokens()


@pytest.mark.parametrize(("fault", "error", "words"), [
    (Fault.api_error(403, 2, "Invalid access token"), AccessTokenRejected, "code 2"),
    (Fault.api_error(403, 3, "Access token expired"), AccessTokenRejected, "code 3"),
    (Fault.api_error(403, 13, "Application does not have the good scope rights"),
     MissingScope, "code 13"),
    (Fault.rate_limited(403), RateLimited, "code 26"),
    (Fault.rate_limited(429), RateLimited, "code 26"),
    (Fault.concurrency_limited(), RateLimited, "code 11"),
    (Fault.device_not_found(), ApiError, "code 9"),
    (Fault.api_error(403, 99, "Something new"), ApiError, "code 99"),
    # Flat-string errors, as Netatmo's front servers send them.
    (Fault.oauth_error("too_many_connections", status=403), RateLimited,
     '"too_many_connections"'),
    (Fault.oauth_error("invalid_parameters", status=400), ApiError, '"invalid_parameters"'),
])
def test_data_endpoint_errors(
    cloud: FakeNetatmoCloud, client: NetatmoClient, fault: Fault,
    error: type[NetatmoError], words: str
) -> None:
    access = str(cloud.issue_tokens()["access_token"])
    cloud.inject("getstationsdata", fault)

    with pytest.raises(error) as caught:
        client.fetch_stations(access, favorites=False)

    assert words in str(caught.value)
    assert "getstationsdata" in str(caught.value)
    assert_clean(caught.value, cloud)
    assert cloud.count("getstationsdata") == 1


def test_device_id_narrows_the_answer_to_one_device(
    cloud: FakeNetatmoCloud, client: NetatmoClient
) -> None:
    access = str(cloud.issue_tokens()["access_token"])

    stations = client.fetch_stations(access, favorites=False, device_id="70:ee:50:00:00:02")
    coaches = client.fetch_homecoaches(access, device_id="70:ee:50:00:bb:02")

    assert [s.id for s in stations] == ["70:ee:50:00:00:02"]
    assert [c.id for c in coaches] == ["70:ee:50:00:bb:02"]
    targets = [r.target for r in cloud.requests() if r.endpoint != "token"]
    assert all("device_id=70%3Aee%3A50%3A00%3A" in t for t in targets)


def test_real_expired_token_and_missing_scope(
    cloud: FakeNetatmoCloud, client: NetatmoClient
) -> None:
    stations_only = str(cloud.issue_tokens(["read_station"])["access_token"])
    with pytest.raises(MissingScope):
        client.fetch_homecoaches(stations_only)
    cloud.expire_access_tokens()
    with pytest.raises(AccessTokenRejected, match="code 3"):
        client.fetch_stations(stations_only, favorites=False)
    with pytest.raises(AccessTokenRejected, match="code 2"):
        client.fetch_stations("not-a-token", favorites=False)


@pytest.mark.parametrize(("fault", "error"), [
    (Fault.http_500(), TransientError),
    (Fault.html_502(), TransientError),
    (Fault.html_503(), TransientError),
    (Fault.truncated_body(), TransientError),
    (Fault.connection_reset(), TransientError),
])
def test_a_data_call_is_one_request_its_retries_are_the_call_policys(
    cloud: FakeNetatmoCloud, client: NetatmoClient, fault: Fault, error: type[NetatmoError]
) -> None:
    access = str(cloud.issue_tokens()["access_token"])
    cloud.inject("getstationsdata", fault)

    with pytest.raises(error) as caught:
        client.fetch_stations(access, favorites=False)

    assert caught.value.transient
    assert_clean(caught.value, cloud)
    assert cloud.count("getstationsdata") == 1
    assert len(client.fetch_stations(access, favorites=False)) == 3


def test_a_token_request_waiting_to_retry_ends_when_the_client_closes(
    cloud: FakeNetatmoCloud
) -> None:
    netatmo = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock(),
                            attempts=3, backoff=600.0)
    cloud.inject("token", Fault.html_502(), times=None)
    worker, failed = in_background(lambda: netatmo.refresh(cloud.mint_refresh_token()),
                                   NetatmoError)
    wait_until("the first token request", lambda: cloud.count("token") == 1, 10.0)
    netatmo.close()  # the service stopping: the 600 s wait before the retry ends now
    worker.join(10.0)

    assert not worker.is_alive()
    assert [type(exc) for exc in failed] == [TransientError]
    assert cloud.count("token") == 1


def test_timeout_is_transient(cloud: FakeNetatmoCloud) -> None:
    netatmo = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock(),
                            timeout=httpx.Timeout(0.3), attempts=1)
    cloud.inject("getstationsdata", Fault.delay(1.0))
    try:
        with pytest.raises(TransientError, match="no answer in time"):
            netatmo.fetch_stations(str(cloud.issue_tokens()["access_token"]), favorites=False)
    finally:
        netatmo.close()


def test_refresh_retried_after_an_unprocessed_reset_or_server_error(
    cloud: FakeNetatmoCloud, client: NetatmoClient
) -> None:
    old = cloud.mint_refresh_token()
    cloud.inject("token", Fault.connection_reset())
    cloud.inject("token", Fault.html_502())

    token = client.refresh(old)

    assert token.refresh_token in cloud.valid_refresh_tokens()
    assert cloud.count("token") == 3
    assert cloud.count("invalid_grant") == 0


def test_bearer_token_never_in_a_url(cloud: FakeNetatmoCloud, client: NetatmoClient) -> None:
    token = client.refresh(cloud.mint_refresh_token())
    client.fetch_stations(token.access_token, favorites=True)
    client.fetch_homecoaches(token.access_token)

    records = cloud.requests()
    secrets = cloud.issued_secrets()
    assert [r.target for r in records if any(s in r.target for s in secrets)] == []
    data = [r for r in records if r.endpoint in ("getstationsdata", "gethomecoachsdata")]
    assert len(data) == 2
    assert all(r.has_authorization and r.status == 200 for r in data)
    assert cloud.count("token_in_query") == 0


def test_request_counts_by_endpoint_and_outcome(
    cloud: FakeNetatmoCloud, client: NetatmoClient
) -> None:
    access = str(cloud.issue_tokens()["access_token"])
    cloud.inject("getstationsdata", Fault.html_502())
    with pytest.raises(TransientError):
        client.fetch_stations(access, favorites=False)
    client.fetch_stations(access, favorites=False)

    counts = client.request_counts()

    assert counts[("getstationsdata", "server_error")] == 1
    assert counts[("getstationsdata", "ok")] == 1



@pytest.mark.parametrize("answer", [
    b'{"access_token": "a\\ud800", "refresh_token": "r", "expires_in": 10800}',
    b'{"access_token": "a\\r\\nX-Injected: 1", "refresh_token": "r"}',
    '{"access_token": "caf\u00e9", "refresh_token": "r"}'.encode(),
])
def test_a_token_that_cannot_go_into_a_header_is_a_bad_response(
    cloud: FakeNetatmoCloud, answer: bytes
) -> None:
    netatmo = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock(),
                            attempts=1)
    cloud.inject("token", Fault.raw_answer(answer))
    try:
        with pytest.raises(BadResponse, match="not printable ASCII"):
            netatmo.refresh(cloud.mint_refresh_token())
    finally:
        netatmo.close()


def test_odd_scopes_and_lifetimes_in_a_token_answer_are_left_out(
    cloud: FakeNetatmoCloud
) -> None:
    netatmo = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock())
    cloud.inject("token", Fault.raw_answer(
        b'{"access_token": "a|1", "refresh_token": "r|1", "expires_in": 1e300,'
        b' "scope": ["read_station", "\\ud800", 7, "read homecoach"]}'))
    try:
        token = netatmo.refresh(cloud.mint_refresh_token())
    finally:
        netatmo.close()

    assert token.scope == ("read_station",)
    assert token.lifetime == 10800


def test_an_answer_trickling_in_ends_at_the_deadline_even_in_its_headers(
    cloud: FakeNetatmoCloud
) -> None:
    # Each byte comes well within the read timeout: only the call's deadline can end it.
    netatmo = NetatmoClient(cloud.base_url, CLIENT_ID, CLIENT_SECRET, SystemClock(),
                            deadline=1.0)
    cloud.inject("getstationsdata", Fault.drip(0.2))
    try:
        with pytest.raises(BadResponse, match=r"longer than 1 s in all \(in the status line"):
            netatmo.fetch_stations(str(cloud.issue_tokens()["access_token"]), favorites=False)
        counts = netatmo.request_counts()
    finally:
        netatmo.close()

    assert counts == {("getstationsdata", "too_slow"): 1}
