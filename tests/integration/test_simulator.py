"""The simulated Netatmo cloud, exercised over real HTTP with the standard library."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from netatmo_exporter.domain.authorization.scopes import KNOWN_SCOPES
from netatmo_exporter.simulator import (
    Cadence,
    FakeNetatmoCloud,
    Fault,
    demo_account,
    empty_account,
    large_account,
    quirks_account,
)
from tests.unit.fakes import FakeClock

REPO = Path(__file__).resolve().parents[2]
REDIRECT = "http://127.0.0.1:9210/auth/callback"
BOTH = ("read_station", "read_homecoach")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class Answer:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def call(
    url: str,
    *,
    form: Mapping[str, str] | None = None,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers=all_headers)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, dict(error.headers), error.read())


@pytest.fixture
def cloud() -> Iterator[FakeNetatmoCloud]:
    with FakeNetatmoCloud(
        client_id="cid", client_secret="csecret", account=demo_account(frozen=True)
    ) as running:
        yield running


def authorize_url(cloud: FakeNetatmoCloud, **overrides: str) -> str:
    params = {
        "client_id": "cid",
        "redirect_uri": REDIRECT,
        "scope": "read_station read_homecoach",
        "state": "st4te",
        "response_type": "code",
        **overrides,
    }
    return f"{cloud.base_url}/oauth2/authorize?{urlencode(params)}"


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self.actions: dict[str, str] = {}
        self.ids: set[str] = set()
        self.scripts = 0
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "script":
            self.scripts += 1
        if tag == "form":
            self._current = attributes["id"]
            self.forms[self._current] = {}
            self.actions[self._current] = attributes["action"]
        elif tag in ("input", "button") and self._current and "name" in attributes:
            self.forms[self._current][attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def consent(cloud: FakeNetatmoCloud, decision: str, **overrides: str) -> Answer:
    page = call(authorize_url(cloud, **overrides))
    assert page.status == 200
    parser = _FormParser()
    parser.feed(page.text)
    form_id = f"{decision}-form"
    return call(cloud.base_url + parser.actions[form_id], form=parser.forms[form_id])


def redirect_params(answer: Answer) -> dict[str, str]:
    assert answer.status == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange_code(cloud: FakeNetatmoCloud, code: str, **overrides: str) -> Answer:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": "cid",
        "client_secret": "csecret",
        "scope": "read_station read_homecoach",
        **overrides,
    }
    return call(cloud.base_url + "/oauth2/token", form=form)


def refresh(cloud: FakeNetatmoCloud, refresh_token: str, **overrides: str) -> Answer:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": "cid",
        "client_secret": "csecret",
        **overrides,
    }
    return call(cloud.base_url + "/oauth2/token", form=form)


def stations(cloud: FakeNetatmoCloud, token: str | None, query: str = "") -> Answer:
    return call(f"{cloud.base_url}/api/getstationsdata{query}", token=token)


def homecoaches(cloud: FakeNetatmoCloud, token: str | None) -> Answer:
    return call(f"{cloud.base_url}/api/gethomecoachsdata", token=token)


def api_error(answer: Answer) -> tuple[int, int]:
    return answer.status, answer.json()["error"]["code"]


# -- authorization ------------------------------------------------------------------


def test_authorize_rejects_an_unknown_client(cloud: FakeNetatmoCloud) -> None:
    answer = call(authorize_url(cloud, client_id="someone-else"))
    assert answer.status == 400
    assert "invalid client_id" in answer.text
    assert call(authorize_url(cloud, redirect_uri="not a url")).status == 400
    assert cloud.count("authorize_rejected") == 2


def test_consent_page_names_the_app_and_scopes_without_javascript(
    cloud: FakeNetatmoCloud,
) -> None:
    answer = call(authorize_url(cloud))
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "netatmo-exporter wants to access your Netatmo data" in answer.text
    parser = _FormParser()
    parser.feed(answer.text)
    assert {"accept", "refuse", "accept-form", "refuse-form"} <= parser.ids
    assert parser.scripts == 0
    assert parser.actions["accept-form"] == "/oauth2/authorize/decision"
    assert 'data-scope="read_station"' in answer.text
    assert 'data-scope="read_homecoach"' in answer.text
    assert parser.forms["accept-form"]["state"] == "st4te"
    assert parser.forms["accept-form"]["decision"] == "accept"


def test_consent_page_describes_each_scope_the_exporter_asks_for(
    cloud: FakeNetatmoCloud,
) -> None:
    answer = call(authorize_url(cloud, scope=" ".join(KNOWN_SCOPES)))
    items = dict(re.findall(r'<li data-scope="([^"]+)">([^<]*)</li>', answer.text))
    assert set(items) == set(KNOWN_SCOPES)
    assert items["read_thermostat"] == ("read your Netatmo Energy homes: rooms, thermostats, "
                                        "radiator valves and relays (read_thermostat)")
    for scope, item in items.items():
        assert not item.startswith(scope), item


def test_accept_redirects_with_a_code_and_the_state(cloud: FakeNetatmoCloud) -> None:
    params = redirect_params(consent(cloud, "accept"))
    assert params["state"] == "st4te"
    assert len(params["code"]) >= 16
    assert cloud.count("consent_accepted") == 1


def test_refuse_redirects_with_access_denied(cloud: FakeNetatmoCloud) -> None:
    params = redirect_params(consent(cloud, "refuse"))
    assert params == {"error": "access_denied", "state": "st4te"}
    assert cloud.count("consent_refused") == 1


def test_a_consent_form_can_be_submitted_once(cloud: FakeNetatmoCloud) -> None:
    page = call(authorize_url(cloud))
    parser = _FormParser()
    parser.feed(page.text)
    url = cloud.base_url + "/oauth2/authorize/decision"
    assert call(url, form=parser.forms["accept-form"]).status == 302
    assert call(url, form=parser.forms["accept-form"]).status == 400


def test_auto_consent_redirects_at_once() -> None:
    with FakeNetatmoCloud(client_id="cid", client_secret="csecret", auto_consent=True) as cloud:
        params = redirect_params(call(authorize_url(cloud)))
        assert params["state"] == "st4te"
        tokens = exchange_code(cloud, params["code"]).json()
        assert tokens["scope"] == ["read_station", "read_homecoach"]
        assert cloud.count("auto_consent") == 1


# -- token endpoint -----------------------------------------------------------------


def test_code_exchange_returns_a_netatmo_token_answer(cloud: FakeNetatmoCloud) -> None:
    code = redirect_params(consent(cloud, "accept"))["code"]
    answer = exchange_code(cloud, code)
    assert answer.status == 200
    tokens = answer.json()
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "expire_in", "scope"}
    assert tokens["expires_in"] == tokens["expire_in"] == 10800
    assert tokens["scope"] == ["read_station", "read_homecoach"]
    assert "|" in tokens["access_token"]
    assert stations(cloud, tokens["access_token"]).status == 200
    assert cloud.valid_refresh_tokens() == {tokens["refresh_token"]}
    assert {tokens["access_token"], tokens["refresh_token"], "csecret"} <= cloud.issued_secrets()
    assert cloud.count("code_grants") == 1


def test_codes_are_single_use_and_bound_to_the_redirect_uri(cloud: FakeNetatmoCloud) -> None:
    code = redirect_params(consent(cloud, "accept"))["code"]
    assert exchange_code(cloud, code).status == 200
    again = exchange_code(cloud, code)
    assert (again.status, again.json()) == (400, {"error": "invalid_grant"})
    other = redirect_params(consent(cloud, "accept"))["code"]
    wrong_uri = exchange_code(cloud, other, redirect_uri="http://127.0.0.1:1/cb")
    assert wrong_uri.json() == {"error": "invalid_grant"}
    assert exchange_code(cloud, "made-up").json() == {"error": "invalid_grant"}
    assert cloud.count("invalid_grant") == 3


def test_codes_expire_after_ten_minutes() -> None:
    clock = FakeClock()
    with FakeNetatmoCloud(auto_consent=True, clock=clock) as cloud:
        code = redirect_params(call(authorize_url(cloud)))["code"]
        clock.advance(601)
        assert exchange_code(cloud, code).json() == {"error": "invalid_grant"}


def test_token_endpoint_checks_client_and_parameters(cloud: FakeNetatmoCloud) -> None:
    refresh_token = cloud.mint_refresh_token()
    wrong = refresh(cloud, refresh_token, client_secret="nope")
    assert (wrong.status, wrong.json()) == (400, {"error": "invalid_client"})
    assert refresh(cloud, refresh_token, client_id="x").json() == {"error": "invalid_client"}
    missing = refresh(cloud, "")
    assert (missing.status, missing.json()) == (400, {"error": "invalid_request"})
    assert exchange_code(cloud, "").json() == {"error": "invalid_request"}
    no_grant = call(cloud.base_url + "/oauth2/token", form={"client_id": "cid"})
    assert no_grant.json() == {"error": "invalid_request"}
    assert refresh(cloud, "x", grant_type="password").json() == {"error": "unsupported_grant_type"}
    assert cloud.valid_refresh_tokens() == {refresh_token}
    assert (cloud.count("invalid_client"), cloud.count("invalid_request")) == (2, 3)


def test_client_credentials_may_come_as_http_basic(cloud: FakeNetatmoCloud) -> None:
    refresh_token = cloud.mint_refresh_token()
    answer = call(
        cloud.base_url + "/oauth2/token",
        form={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers={"Authorization": "Basic Y2lkOmNzZWNyZXQ="},
    )
    assert answer.status == 200


def test_refresh_rotates_the_refresh_token(cloud: FakeNetatmoCloud) -> None:
    first = cloud.issue_tokens()
    answer = refresh(cloud, first["refresh_token"])
    assert answer.status == 200
    second = answer.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == list(BOTH)
    old = refresh(cloud, first["refresh_token"])
    assert (old.status, old.json()) == (400, {"error": "invalid_grant"})
    assert cloud.valid_refresh_tokens() == {second["refresh_token"]}
    assert stations(cloud, first["access_token"]).status == 200, "old access token still works"
    assert stations(cloud, second["access_token"]).status == 200
    assert (cloud.count("refresh_grants"), cloud.count("invalid_grant")) == (1, 1)


def test_concurrent_refreshes_with_one_token_have_one_winner(cloud: FakeNetatmoCloud) -> None:
    refresh_token = cloud.mint_refresh_token()
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        statuses.append(refresh(cloud, refresh_token).status)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [400] * 7


def test_access_tokens_expire_after_their_fractional_lifetime() -> None:
    with FakeNetatmoCloud(token_lifetime=0.6, account=demo_account(frozen=True)) as cloud:
        tokens = cloud.issue_tokens()
        assert tokens["expires_in"] == 1
        assert stations(cloud, tokens["access_token"]).status == 200
        time.sleep(0.7)
        assert api_error(stations(cloud, tokens["access_token"])) == (403, 3)
        assert stations(cloud, tokens["access_token"]).json()["error"]["message"] == (
            "Access token expired"
        )
        renewed = refresh(cloud, tokens["refresh_token"]).json()
        assert stations(cloud, renewed["access_token"]).status == 200
        cloud.set_token_lifetime(2.5)
        assert cloud.issue_tokens()["expires_in"] == 3
        assert cloud.count("expired_token") == 2


def test_expire_access_tokens_keeps_refresh_tokens(cloud: FakeNetatmoCloud) -> None:
    tokens = cloud.issue_tokens()
    cloud.expire_access_tokens()
    assert api_error(stations(cloud, tokens["access_token"])) == (403, 3)
    assert refresh(cloud, tokens["refresh_token"]).status == 200


def test_revoke_all_invalidates_every_token(cloud: FakeNetatmoCloud) -> None:
    tokens = cloud.issue_tokens()
    cloud.revoke_all()
    assert api_error(stations(cloud, tokens["access_token"])) == (403, 2)
    assert refresh(cloud, tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    assert cloud.valid_refresh_tokens() == set()
    assert tokens["access_token"] in cloud.issued_secrets()


# -- data endpoints -----------------------------------------------------------------


def test_missing_or_unknown_tokens_are_refused(cloud: FakeNetatmoCloud) -> None:
    assert api_error(stations(cloud, None)) == (403, 2)
    unknown = stations(cloud, "0|0")
    assert unknown.json() == {"error": {"code": 2, "message": "Invalid access token"}}
    assert cloud.count("invalid_token") == 2


def test_a_token_in_the_query_string_is_refused(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    answer = stations(cloud, token, "?" + urlencode({"access_token": token}))
    assert api_error(answer) == (403, 2)
    assert cloud.count("token_in_query") == 1
    assert cloud.count("data_ok") == 0


def test_a_missing_scope_is_refused_with_code_13(cloud: FakeNetatmoCloud) -> None:
    station_only = cloud.issue_tokens(scope=("read_station",))["access_token"]
    assert stations(cloud, station_only).status == 200
    answer = homecoaches(cloud, station_only)
    assert api_error(answer) == (403, 13)
    assert answer.json()["error"]["message"] == "Application does not have the good scope rights"
    coach_only = cloud.issue_tokens(scope=("read_homecoach",))["access_token"]
    assert api_error(stations(cloud, coach_only)) == (403, 13)
    assert homecoaches(cloud, coach_only).status == 200
    assert cloud.count("missing_scope") == 2


def test_stations_answer_matches_the_account_rendering(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    answer = stations(cloud, token)
    assert answer.status == 200
    document = answer.json()
    assert document["status"] == "ok"
    assert isinstance(document["time_exec"], float)
    assert abs(document["time_server"] - time.time()) < 5
    expected = cloud.account.stations_body(document["time_server"])
    assert document["body"] == expected
    assert document["body"]["user"]["mail"] == "demo@example.com"


def test_demo_account_has_the_documented_quirks(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    document = stations(cloud, token).json()
    now = document["time_server"]
    devices = {d["_id"]: d for d in document["body"]["devices"]}
    assert list(devices) == ["70:ee:50:00:00:01", "70:ee:50:00:00:02", "70:ee:50:00:00:03"]
    assert {d["home_name"] for d in devices.values()} == {"Maison", "Chalet"}
    assert devices["70:ee:50:00:00:01"]["station_name"] == "Maison (Lyon)"
    assert "station_name" not in devices["70:ee:50:00:00:02"]
    modules = {m["_id"]: m for d in devices.values() for m in d["modules"]}
    types = {m["type"] for m in modules.values()} | {d["type"] for d in devices.values()}
    assert types == {"NAMain", "NAModule1", "NAModule2", "NAModule3", "NAModule4", "NAModule9"}

    main = devices["70:ee:50:00:00:01"]
    assert main["dashboard_data"]["Temperature"] == 21.5
    assert main["dashboard_data"]["Pressure"] == 1016.2
    assert main["dashboard_data"]["AbsolutePressure"] == 995.4
    assert main["dashboard_data"]["pressure_trend"] == "stable"
    assert main["place"]["location"] == [4.8357, 45.764]
    assert now - main["last_status_store"] < 600

    garden = modules["02:00:00:00:00:01"]
    assert garden["module_name"] == 'Jardin "Süd" \\ Terrasse'
    assert garden["dashboard_data"]["Temperature"] == 12.3
    assert garden["battery_vp"] == 5210
    wind = modules["06:00:00:00:00:01"]["dashboard_data"]
    assert {"WindStrength", "WindAngle", "GustStrength", "GustAngle", "max_wind_str"} <= set(wind)
    assert modules["05:00:00:00:00:01"]["dashboard_data"]["sum_rain_24"] == 7.8
    assert modules["03:00:00:00:00:01"]["module_name"] == "Chambre"
    assert modules["03:00:00:00:00:02"]["module_name"] == "Chambre"

    assert "module_name" not in modules["02:00:00:00:00:02"]
    cave = modules["03:00:00:00:00:03"]
    assert cave["reachable"] is False
    assert "dashboard_data" not in cave
    attic = modules["03:00:00:00:00:04"]
    assert now - attic["dashboard_data"]["time_utc"] == 10800
    never_paired = modules["05:00:00:00:00:02"]
    assert (never_paired["rf_status"], never_paired["battery_vp"]) == (255, 65535)
    assert never_paired["last_seen"] == 0
    assert "dashboard_data" not in never_paired
    assert modules["02:00:00:00:00 03"]["module_name"] == "Balcon"
    assert modules["09:00:00:00:00:01"]["type"] == "NAModule9"


def test_favourites_only_when_asked(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    plain = stations(cloud, token).json()["body"]["devices"]
    assert all("favorite" not in d for d in plain)
    body = stations(cloud, token, "?get_favorites=true").json()["body"]
    favourite = body["devices"][-1]
    assert len(body["devices"]) == 4
    assert favourite["_id"] == "70:ee:50:00:ff:01"
    assert (favourite["favorite"], favourite["read_only"]) == (True, True)
    assert "battery_percent" not in favourite["modules"][0]
    assert "rf_status" not in favourite["modules"][0]
    assert "wifi_status" not in favourite


def test_post_and_device_id_are_supported(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    answer = call(
        cloud.base_url + "/api/getstationsdata",
        form={"device_id": "70:ee:50:00:00:03"},
        token=token,
    )
    assert [d["_id"] for d in answer.json()["body"]["devices"]] == ["70:ee:50:00:00:03"]
    assert api_error(stations(cloud, token, "?device_id=70:ee:50:99:99:99")) == (403, 9)


def test_home_coaches(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    devices = homecoaches(cloud, token).json()["body"]["devices"]
    assert [d["_id"] for d in devices] == ["70:ee:50:00:bb:01", "70:ee:50:00:bb:02"]
    assert {d["type"] for d in devices} == {"NHC"}
    first = devices[0]
    assert (first["station_name"], first["name"]) == ("Chambre", "Chambre")
    assert first["dashboard_data"]["health_idx"] == 1
    assert first["dashboard_data"]["CO2"] == 650
    assert "station_name" not in devices[1]
    assert cloud.count("gethomecoachsdata_ok") == 1


def test_set_account_and_time_offset(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    cloud.time_offset = 7200
    document = stations(cloud, token).json()
    main = document["body"]["devices"][0]["dashboard_data"]
    assert document["time_server"] - main["time_utc"] == pytest.approx(7200 + 240, abs=2)
    cloud.set_account(empty_account())
    assert stations(cloud, token).json()["body"]["devices"] == []


def test_live_values_drift_but_frozen_ones_do_not() -> None:
    live, frozen = demo_account(), demo_account(frozen=True)
    first, later = live.stations_body(1_700_000_000), live.stations_body(1_700_003_600)
    temperature = [b["devices"][0]["dashboard_data"]["Temperature"] for b in (first, later)]
    assert temperature[0] != temperature[1]
    assert all(abs(t - 21.5) <= 0.61 for t in temperature)
    fixed = [frozen.stations_body(t)["devices"][0]["dashboard_data"] for t in (0, 3600)]
    assert fixed[0]["Temperature"] == fixed[1]["Temperature"] == 21.5


def test_cadence_uploads_on_per_device_phases_with_varying_delay_and_missed_uploads() -> None:
    cadence = Cadence(period=600.0, delay=3.0, jitter=4.0, miss_every=10)
    ids = demo_account().device_ids()
    uploads = {d: cadence.uploads(d, 1_700_000_000, 1_700_000_000 + 100 * 600) for d in ids}

    assert len({cadence.phase(d) for d in ids}) == len(ids)
    for device_uploads in uploads.values():
        assert all(3.0 <= u.visible_at - u.stored_at <= 7.0 for u in device_uploads)
        gaps = {b.stored_at - a.stored_at for a, b in itertools.pairwise(device_uploads)}
        assert {600, 1200} <= {round(gap, -1) for gap in gaps}  # one in ten is missed
    delays = [u.visible_at - u.stored_at for us in uploads.values() for u in us]
    assert max(delays) - min(delays) > 3.0


def test_cadence_answers_show_each_device_at_its_latest_visible_upload() -> None:
    now = [1_700_000_000.0]
    cadence = Cadence(period=30.0, miss_every=0)
    account = demo_account(frozen=True).with_cadence(cadence)
    with FakeNetatmoCloud(account=account, clock=lambda: now[0]) as cloud:
        token = cloud.issue_tokens()["access_token"]
        salon = "70:ee:50:00:00:01"
        upload = cadence.latest_visible(salon, now[0])
        assert upload is not None
        following = cadence.upload(salon, upload.index + 1)
        assert following is not None

        now[0] = following.visible_at - 0.1
        before = stations(cloud, token, f"?device_id={salon}").json()["body"]["devices"]
        now[0] = following.visible_at
        after = stations(cloud, token, f"?device_id={salon}").json()["body"]["devices"]
        coaches = homecoaches(cloud, token).json()["body"]["devices"]

    assert [d["last_status_store"] for d in before] == [upload.stored_at]
    assert [d["last_status_store"] for d in after] == [following.stored_at]
    measured = after[0]["dashboard_data"]["time_utc"]
    assert following.stored_at - 240 <= measured < following.stored_at
    for coach in coaches:
        latest = cadence.latest_visible(coach["_id"], now[0])
        assert latest is not None and coach["last_status_store"] == latest.stored_at


def test_quirks_account_has_the_shapes_seen_in_real_payloads() -> None:
    account = quirks_account(frozen=True)
    station, = account.stations_body(1_700_000_000)["devices"]
    coach, = account.homecoaches_body(1_700_000_000)["devices"]

    assert "home_name" not in station and "module_name" not in station
    assert station["dashboard_data"]["CO2"] == 0
    assert coach["name"] == "Bureau" and "station_name" not in coach
    assert "Temperature" not in coach["dashboard_data"]


def test_large_account_size() -> None:
    account = large_account(stations=5, modules_per_station=6, favorites=2)
    body = account.stations_body(1_700_000_000, favorites=True)
    assert len(body["devices"]) == 7
    assert all(len(d["modules"]) == 6 for d in body["devices"])
    ids = [m["_id"] for d in body["devices"] for m in d["modules"]]
    assert len(set(ids)) == len(ids)
    assert len(large_account().stations) == 50


def test_unknown_paths_answer_404_json(cloud: FakeNetatmoCloud) -> None:
    answer = call(cloud.base_url + "/api/getthermostatsdata")
    assert answer.status == 404
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"]["code"] == 404
    assert cloud.count("not_found") == 1


# -- faults -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault.http_500(), 500, 1),
        (Fault.rate_limited(), 403, 26),
        (Fault.rate_limited(status=429), 429, 26),
        (Fault.concurrency_limited(), 429, 11),
        (Fault.api_error(403, 9, "Device not found"), 403, 9),
    ],
)
def test_api_error_faults(cloud: FakeNetatmoCloud, fault: Fault, status: int, code: int) -> None:
    token = cloud.issue_tokens()["access_token"]
    cloud.inject("getstationsdata", fault, times=2)
    assert api_error(stations(cloud, token)) == (status, code)
    assert api_error(stations(cloud, token)) == (status, code)
    assert stations(cloud, token).status == 200
    assert cloud.count("faults") == 2
    assert cloud.count("rate_limited") == (2 if code == 26 else 0)
    assert cloud.count("concurrency_limited") == (2 if code == 11 else 0)


def test_html_502(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    cloud.inject("gethomecoachsdata", Fault.html_502())
    answer = homecoaches(cloud, token)
    assert answer.status == 502
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in answer.text


def test_malformed_json(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    cloud.inject("getstationsdata", Fault.malformed_json())
    answer = stations(cloud, token)
    assert answer.status == 200
    with pytest.raises(json.JSONDecodeError):
        answer.json()


def raw_get(cloud: FakeNetatmoCloud, path: str, token: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", cloud.port, timeout=5)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        with connection.getresponse() as response:
            return response.read()
    finally:
        connection.close()


def test_truncated_body(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    cloud.inject("getstationsdata", Fault.truncated_body())
    with pytest.raises(http.client.IncompleteRead):
        raw_get(cloud, "/api/getstationsdata", token)
    assert json.loads(raw_get(cloud, "/api/getstationsdata", token))["status"] == "ok"


def test_connection_reset(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    cloud.inject("getstationsdata", Fault.connection_reset())
    with pytest.raises(ConnectionResetError):
        raw_get(cloud, "/api/getstationsdata", token)
    assert cloud.count("fault:connection_reset") == 1


def test_lost_response_rotates_the_token_the_client_never_sees(cloud: FakeNetatmoCloud) -> None:
    refresh_token = cloud.mint_refresh_token()
    cloud.inject("token", Fault.lost_response())
    with pytest.raises((ConnectionResetError, urllib.error.URLError)):
        refresh(cloud, refresh_token)
    assert refresh(cloud, refresh_token).json() == {"error": "invalid_grant"}
    assert cloud.count("refresh_grants") == 1


def test_delay_answers_normally_after_the_wait(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    cloud.inject("getstationsdata", Fault.delay(0.3))
    started = time.monotonic()
    assert stations(cloud, token).status == 200
    assert time.monotonic() - started >= 0.3


def test_token_faults_do_not_consume_the_refresh_token(cloud: FakeNetatmoCloud) -> None:
    refresh_token = cloud.mint_refresh_token()
    cloud.inject("token", Fault.http_500())
    cloud.inject("token", Fault.oauth_error("invalid_grant"))
    assert refresh(cloud, refresh_token).status == 500
    assert refresh(cloud, refresh_token).json() == {"error": "invalid_grant"}
    assert refresh(cloud, refresh_token).status == 200


def test_faults_until_cleared(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    cloud.inject("getstationsdata", Fault.http_500(), times=None)
    assert [stations(cloud, token).status for _ in range(3)] == [500, 500, 500]
    cloud.clear_faults()
    assert stations(cloud, token).status == 200
    with pytest.raises(ValueError, match="unknown endpoint"):
        cloud.inject("getthermostatsdata", Fault.http_500())


def test_enforced_rate_limits() -> None:
    with FakeNetatmoCloud(rate_limits=((3, 60.0),)) as cloud:
        token = cloud.issue_tokens()["access_token"]
        assert [stations(cloud, token).status for _ in range(3)] == [200, 200, 200]
        assert api_error(stations(cloud, token)) == (429, 26)
        assert cloud.count("rate_limited") == 1


# -- counters, records, serving ------------------------------------------------------


def test_counters_and_request_records(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    stations(cloud, token)
    homecoaches(cloud, token)
    homecoaches(cloud, None)
    counters = cloud.counters
    assert counters["getstationsdata"] == 1
    assert counters["gethomecoachsdata"] == 2
    assert counters["data_ok"] == 2
    assert counters["requests"] == 3
    records = cloud.requests()
    assert [(r.endpoint, r.status, r.has_authorization) for r in records] == [
        ("getstationsdata", 200, True),
        ("gethomecoachsdata", 200, True),
        ("gethomecoachsdata", 403, False),
    ]
    cloud.reset_counters()
    assert cloud.counters == {}
    assert cloud.count("requests") == 0


def test_keep_alive_answers_are_fast(cloud: FakeNetatmoCloud) -> None:
    token = cloud.issue_tokens()["access_token"]
    connection = http.client.HTTPConnection("127.0.0.1", cloud.port, timeout=5)
    started = time.monotonic()
    try:
        for _ in range(20):
            connection.request(
                "GET", "/api/gethomecoachsdata", headers={"Authorization": f"Bearer {token}"}
            )
            with connection.getresponse() as response:
                assert response.status == 200
                response.read()
    finally:
        connection.close()
    assert time.monotonic() - started < 0.5


def test_binds_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeNetatmoCloud(host="0.0.0.0").start()


def test_never_logs_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with FakeNetatmoCloud() as cloud:
        tokens = cloud.issue_tokens()
        stations(cloud, tokens["access_token"], "?" + urlencode({"access_token": "leak"}))
        refresh(cloud, tokens["refresh_token"])
        secrets = cloud.issued_secrets() | {"leak"}
    assert caplog.records
    assert not any(s in caplog.text for s in secrets)


def test_command_line_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "netatmo_exporter.simulator", "--client-id", "X"]
    command += ["--client-secret", "Y", "--token-lifetime", "60", "--print-refresh-token"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    ) as process:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        refresh_token = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        answer = call(
            base_url + "/oauth2/token",
            form={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": "X",
                "client_secret": "Y",
            },
        )
        assert answer.json()["expires_in"] == 60
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert stderr == ""
