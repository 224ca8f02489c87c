"""A simulated Netatmo cloud on loopback that speaks the real protocol.

Endpoints (section 4 of the spec):

* ``GET /oauth2/authorize`` -- consent page (or, with ``auto_consent``, an immediate
  redirect with a code); ``POST /oauth2/authorize/decision`` -- the page's buttons.
* ``POST /oauth2/token`` -- ``authorization_code`` and ``refresh_token`` grants with
  refresh-token rotation; client credentials as form fields or HTTP Basic.
* ``GET|POST /api/getstationsdata`` and ``/api/gethomecoachsdata`` -- bearer token in
  the ``Authorization`` header only; a token in the query string is refused (code 2).
* ``GET|POST /api/homesdata`` and ``/api/homestatus?home_id=`` (scope ``read_thermostat``)
  -- Netatmo Energy; an unknown ``home_id`` is refused (code 21).
* ``GET|POST /api/getmeasure`` (``device_id``, ``module_id``, ``scale``, ``type``,
  ``date_begin``, ``date_end``, ``limit``, ``optimize``, ``real_time``) and
  ``/api/getroommeasure`` (``home_id``, ``room_id`` instead of the ids; scope
  ``read_thermostat``) -- the account's stored history (:mod:`.history`). ``getmeasure``
  needs the device's scope: ``read_station`` for a station, ``read_homecoach`` for a Home
  Coach. An unknown device or module answers code 9; an unknown home or room code 21; a
  missing ``scale`` or ``type`` (or id) code 10; an unknown scale or type, a ``limit``
  outside 1-1024 or a non-numeric date code 21 (all HTTP 400 but code 9, 403). ``type`` is
  comma-separated and case-insensitive (``temperature``, ``humidity``, ``co2``,
  ``pressure``, ``noise``, ``windstrength``, ``windangle``, ``guststrength``,
  ``gustangle``, ``rain``, ``health_idx``, ``min_temp``, ``max_temp``; rooms:
  ``temperature``, ``sp_temperature``, ``min_temp``, ``max_temp``); a type the module
  does not measure is ``null``. ``limit`` (default 1024) counts readings from
  ``date_begin`` (default: the history's start); ``date_end`` (default: now) is inclusive;
  nothing after the data time is stored.

Rate limits (``rate_limits=``, e.g. :data:`NETATMO_RATE_LIMITS` or
``scaled_rate_limits(60)`` for tests that cannot wait an hour) count every data call of
the user -- ``getstationsdata``, ``gethomecoachsdata``, Energy and measure calls alike --
so a backfill and the live exporter share them; a refused call (code 26, HTTP 429) is
not counted.

Counter names (``cloud.count(name)``, ``cloud.counters``):

* one per endpoint, counting every request: ``authorize``, ``authorize_decision``,
  ``token``, ``getstationsdata``, ``gethomecoachsdata``, ``homesdata``, ``homestatus``,
  ``not_found``; and ``requests``;
* authorization: ``consent_shown``, ``consent_accepted``, ``consent_refused``,
  ``auto_consent``, ``authorize_rejected``;
* token endpoint: ``code_grants`` and ``refresh_grants`` (successful), ``invalid_grant``,
  ``invalid_client``, ``invalid_request``, ``unsupported_grant_type``;
* data endpoints: ``data_ok`` plus ``getstationsdata_ok`` / ``gethomecoachsdata_ok``,
  ``invalid_token`` (code 2, missing or unknown token), ``token_in_query``,
  ``expired_token`` (code 3), ``missing_scope`` (code 13), ``device_not_found`` (code 9),
  ``home_not_found`` (code 21), and ``homesdata_ok`` / ``homestatus_ok``;
* measure calls: ``getmeasure`` / ``getroommeasure`` (every request),
  ``getmeasure_ok`` / ``getroommeasure_ok``, ``measure_readings`` (readings or buckets
  answered), ``bad_measure_request`` (codes 10 and 21);
* ``rate_limited`` (code 26, injected or enforced), ``concurrency_limited`` (code 11),
  ``faults`` (every injected fault met) and ``fault:<kind>``.

Tokens and the client secret are never logged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hmac
import json
import logging
import math
import secrets
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from netatmo_exporter.adapters.web.http_policy import http_url

from . import pages
from .accounts import Account, demo_account
from .faults import Fault, FaultKind
from .history import DERIVED_TYPES, MAX_LIMIT, ROOM_TYPES, SCALES, WEATHER_TYPES, SimSeries, shape

log = logging.getLogger(__name__)

DEFAULT_SCOPE: tuple[str, ...] = ("read_station", "read_homecoach")
CODE_LIFETIME = 600.0
CONSENT_LIFETIME = 600.0
NETATMO_RATE_LIMITS: tuple[tuple[int, float], ...] = ((50, 10.0), (500, 3600.0))
"""Netatmo's per-user limits: 50 requests per 10 s and 500 per hour."""


def scaled_rate_limits(speedup: float) -> tuple[tuple[int, float], ...]:
    """Netatmo's limits with windows ``speedup`` times shorter (same counts): an hour's
    budget of 500 calls renews every minute at ``speedup=60``."""
    return tuple((count, window / speedup) for count, window in NETATMO_RATE_LIMITS)


ROUTES: Mapping[str, str] = {
    "/oauth2/authorize": "authorize",
    "/oauth2/authorize/decision": "authorize_decision",
    "/oauth2/token": "token",
    "/api/getstationsdata": "getstationsdata",
    "/api/gethomecoachsdata": "gethomecoachsdata",
    "/api/homesdata": "homesdata",
    "/api/homestatus": "homestatus",
    "/api/getmeasure": "getmeasure",
    "/api/getroommeasure": "getroommeasure",
}
ENDPOINTS: frozenset[str] = frozenset(ROUTES.values())
DATA_SCOPES: Mapping[str, str] = {
    "getstationsdata": "read_station",
    "gethomecoachsdata": "read_homecoach",
    "homesdata": "read_thermostat",
    "homestatus": "read_thermostat",
    "getmeasure": "read_station",
    "getroommeasure": "read_thermostat",
}
"""The scope each data endpoint needs (``getmeasure``: for a Home Coach, ``read_homecoach``)."""

Transport = Literal["normal", "truncate", "reset", "lost", "huge", "drip"]


@dataclass(frozen=True)
class SimRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    form: Mapping[str, str]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    transport: Transport = "normal"


@dataclass(frozen=True)
class RequestRecord:
    """One request as the cloud saw it (no header values are kept)."""

    time: float
    method: str
    target: str
    endpoint: str
    status: int
    has_authorization: bool


@dataclass(frozen=True)
class _Code:
    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True)
class _Consent:
    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    expires_at: float


@dataclass(frozen=True)
class _AccessGrant:
    scope: tuple[str, ...]
    expires_at: float


@dataclass
class _QueuedFault:
    fault: Fault
    remaining: int | None


@dataclass
class _State:
    codes: dict[str, _Code] = field(default_factory=dict)
    consents: dict[str, _Consent] = field(default_factory=dict)
    access: dict[str, _AccessGrant] = field(default_factory=dict)
    refresh: dict[str, tuple[str, ...]] = field(default_factory=dict)
    issued: set[str] = field(default_factory=set)
    faults: dict[str, deque[_QueuedFault]] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    records: list[RequestRecord] = field(default_factory=list)
    data_calls: deque[float] = field(default_factory=deque)


def _json(status: int, document: object, **kwargs: Any) -> Response:
    body = json.dumps(document, ensure_ascii=False).encode()
    return Response(status, body, **kwargs)


def _html(status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status, text.encode(), "text/html; charset=utf-8", headers)


def _api_error(status: int, code: int, message: str) -> Response:
    return _json(status, {"error": {"code": code, "message": message}})


def _oauth_error(error: str, status: int = 400) -> Response:
    return _json(status, {"error": error}, headers=(("Cache-Control", "no-store"),))


def _new_token() -> str:
    return f"{secrets.token_hex(12)}|{secrets.token_hex(16)}"


def _redirect(redirect_uri: str, params: Mapping[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in redirect_uri else "?"
    location = quote(redirect_uri + separator + query, safe=":/?#[]@!$&'()*+,;=%~")
    return _html(302, pages.redirect_page(location), (("Location", location),))


def _valid_redirect_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment


class FakeNetatmoCloud:
    """The simulated cloud; ``start()`` serves it on loopback in a background thread.

    All methods are thread-safe. ``clock`` (default ``time.time``) drives token and code
    expiry and the data time; ``time_offset`` seconds are subtracted from the data time
    only, so a positive offset makes every reading look older.
    """

    def __init__(
        self,
        client_id: str = "cid",
        client_secret: str = "csecret",  # noqa: S107 - a fake cloud's fake secret
        token_lifetime: float = 10800.0,
        account: Account | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        auto_consent: bool = False,
        *,
        app_name: str = "netatmo-exporter",
        clock: Callable[[], float] = time.time,
        rate_limits: Sequence[tuple[int, float]] = (),
        beyond_loopback: bool = False,
    ) -> None:
        """`beyond_loopback`: `host` may be any address (`netatmo-exporter simulator
        --listen`, a user's explicit choice); otherwise a loopback one only."""
        self.client_id = client_id
        self._beyond_loopback = beyond_loopback
        self._client_secret = client_secret
        self._token_lifetime = float(token_lifetime)
        self._account = account if account is not None else demo_account()
        self.host = host
        self.port = port
        self.auto_consent = auto_consent
        self.app_name = app_name
        self.time_offset = 0.0
        self._clock = clock
        self._rate_limits = tuple(rate_limits)
        self._lock = threading.Lock()
        self._state = _State()
        self._state.issued.add(client_secret)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeNetatmoCloud:
        if self._server is not None:
            raise RuntimeError("the fake Netatmo cloud is already running")
        server = _Server((self.host, self.port), self, self._beyond_loopback)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-netatmo-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeNetatmoCloud:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return http_url(self.host, self.port)

    # -- account and time ------------------------------------------------------------

    @property
    def account(self) -> Account:
        return self._account

    def set_account(self, account: Account) -> None:
        self._account = account

    def set_token_lifetime(self, seconds: float) -> None:
        """Lifetime of access tokens issued from now on (fractional seconds allowed)."""
        self._token_lifetime = float(seconds)

    def now(self) -> float:
        return self._clock()

    def data_time(self) -> int:
        """The ``now`` the account is rendered at: the clock minus ``time_offset``."""
        return int(self._clock() - self.time_offset)

    # -- tokens ----------------------------------------------------------------------

    def issue_tokens(self, scope: Iterable[str] = DEFAULT_SCOPE) -> dict[str, Any]:
        """A fresh token pair, as the token endpoint would answer it, without HTTP."""
        with self._lock:
            return self._issue_locked(tuple(scope))

    def mint_refresh_token(self, scope: Iterable[str] = DEFAULT_SCOPE) -> str:
        """A fresh refresh token, like the developer console's token generator."""
        return str(self.issue_tokens(scope)["refresh_token"])

    def issued_secrets(self) -> set[str]:
        """Every access and refresh token ever issued, and the client secret."""
        with self._lock:
            return set(self._state.issued)

    def valid_refresh_tokens(self) -> set[str]:
        with self._lock:
            return set(self._state.refresh)

    def valid_access_tokens(self) -> set[str]:
        now = self._clock()
        with self._lock:
            return {t for t, g in self._state.access.items() if g.expires_at > now}

    def revoke_all(self) -> None:
        """Invalidate every refresh and access token and pending code (a revoked app)."""
        with self._lock:
            self._state.access.clear()
            self._state.refresh.clear()
            self._state.codes.clear()

    def expire_access_tokens(self) -> None:
        """Make every access token expired now; refresh tokens stay valid."""
        now = self._clock()
        with self._lock:
            for token, grant in self._state.access.items():
                self._state.access[token] = _AccessGrant(grant.scope, min(grant.expires_at, now))

    def _issue_locked(self, scope: tuple[str, ...]) -> dict[str, Any]:
        access, refresh = _new_token(), _new_token()
        lifetime = self._token_lifetime
        self._state.access[access] = _AccessGrant(scope, self._clock() + lifetime)
        self._state.refresh[refresh] = scope
        self._state.issued.update((access, refresh))
        self._state.counters["tokens_issued"] += 1
        expires_in = max(1, math.ceil(lifetime))
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": expires_in,
            "expire_in": expires_in,
            "scope": list(scope),
        }

    # -- faults and counters ---------------------------------------------------------

    def inject(self, endpoint: str, fault: Fault, times: int | None = 1) -> None:
        """Queue ``fault`` for the next ``times`` calls of ``endpoint``.

        ``endpoint`` is one of ``token``, ``getstationsdata``, ``gethomecoachsdata``,
        ``authorize``, ``authorize_decision``. ``times=None`` repeats it until
        ``clear_faults()``. Faults queued for one endpoint are met in order.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {sorted(ENDPOINTS)}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for ever")
        with self._lock:
            self._state.faults.setdefault(endpoint, deque()).append(_QueuedFault(fault, times))

    def clear_faults(self, endpoint: str | None = None) -> None:
        with self._lock:
            if endpoint is None:
                self._state.faults.clear()
            else:
                self._state.faults.pop(endpoint, None)

    def count(self, name: str) -> int:
        with self._lock:
            return self._state.counters[name]

    @property
    def counters(self) -> dict[str, int]:
        """A snapshot of all counters (see the module docstring for the names)."""
        with self._lock:
            return dict(self._state.counters)

    def reset_counters(self) -> None:
        with self._lock:
            self._state.counters.clear()
            self._state.records.clear()

    def requests(self) -> list[RequestRecord]:
        """Every request seen since start (or ``reset_counters``), oldest first."""
        with self._lock:
            return list(self._state.records)

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._state.faults.get(endpoint)
            if not queue:
                return None
            queued = queue[0]
            if queued.remaining is not None:
                queued.remaining -= 1
                if queued.remaining == 0:
                    queue.popleft()
            counters = self._state.counters
            counters["faults"] += 1
            counters[f"fault:{queued.fault.kind.value}"] += 1
            if queued.fault.code == 26:
                counters["rate_limited"] += 1
            elif queued.fault.code == 11:
                counters["concurrency_limited"] += 1
            return queued.fault

    def _bump(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._state.counters[name] += 1

    def _record(self, request: SimRequest, target: str, endpoint: str, status: int) -> None:
        record = RequestRecord(
            self._clock(),
            request.method,
            target,
            endpoint,
            status,
            "authorization" in request.headers,
        )
        with self._lock:
            self._state.records.append(record)

    # -- protocol --------------------------------------------------------------------

    def handle(self, request: SimRequest) -> tuple[Response, Fault | None]:
        """Answer one request; the HTTP layer applies the returned fault's transport."""
        endpoint = ROUTES.get(request.path, "not_found")
        self._bump("requests", endpoint)
        fault = self._take_fault(endpoint) if endpoint != "not_found" else None
        if fault is not None and fault.kind not in (FaultKind.DELAY, FaultKind.LOST_RESPONSE,
                                                    FaultKind.DRIP):
            return _fault_response(fault), fault
        return self._answer(endpoint, request), fault

    def _answer(self, endpoint: str, request: SimRequest) -> Response:
        if endpoint == "authorize":
            if request.method != "GET":
                return _html(405, pages.error_page("Use GET."), (("Allow", "GET"),))
            return self._authorize(request.query)
        if endpoint == "authorize_decision":
            if request.method != "POST":
                return _html(405, pages.error_page("Use POST."), (("Allow", "POST"),))
            return self._decision(request.form)
        if endpoint == "token":
            if request.method != "POST":
                self._bump("invalid_request")
                return _oauth_error("invalid_request", 405)
            return self._token(request)
        if endpoint in DATA_SCOPES:
            return self._data(endpoint, request)
        return _json(404, {"error": {"code": 404, "message": "Not found"}})

    def _authorize(self, query: Mapping[str, str]) -> Response:
        client_id = query.get("client_id", "")
        redirect_uri = query.get("redirect_uri", "")
        problem = None
        if client_id != self.client_id:
            problem = "Unknown application (invalid client_id)."
        elif not _valid_redirect_uri(redirect_uri):
            problem = "Missing or invalid redirect_uri."
        elif query.get("response_type", "code") != "code":
            problem = "Unsupported response_type: only 'code' is supported."
        if problem is not None:
            self._bump("authorize_rejected")
            return _html(400, pages.error_page(problem))
        scope = tuple(query.get("scope", "").split()) or ("read_station",)
        state = query.get("state")
        if self.auto_consent:
            self._bump("auto_consent")
            return _redirect(
                redirect_uri,
                {"code": self._new_code(client_id, redirect_uri, scope), "state": state},
            )
        request_id = secrets.token_urlsafe(18)
        with self._lock:
            self._state.consents[request_id] = _Consent(
                client_id, redirect_uri, scope, state, self._clock() + CONSENT_LIFETIME
            )
            self._state.counters["consent_shown"] += 1
        fields = {"client_id": client_id, "redirect_uri": redirect_uri, "scope": " ".join(scope)}
        if state is not None:
            fields["state"] = state
        return _html(
            200,
            pages.consent_page(self.app_name, scope, request_id, fields),
            (("Cache-Control", "no-store"), ("X-Frame-Options", "DENY")),
        )

    def _decision(self, form: Mapping[str, str]) -> Response:
        with self._lock:
            consent = self._state.consents.pop(form.get("request_id", ""), None)
        if consent is None or consent.expires_at <= self._clock():
            self._bump("authorize_rejected")
            return _html(400, pages.error_page("This authorization request is unknown or expired."))
        decision = form.get("decision")
        if decision == "accept":
            self._bump("consent_accepted")
            code = self._new_code(consent.client_id, consent.redirect_uri, consent.scope)
            return _redirect(consent.redirect_uri, {"code": code, "state": consent.state})
        if decision == "refuse":
            self._bump("consent_refused")
            return _redirect(
                consent.redirect_uri, {"error": "access_denied", "state": consent.state}
            )
        self._bump("authorize_rejected")
        return _html(400, pages.error_page("Unknown decision."))

    def _new_code(self, client_id: str, redirect_uri: str, scope: tuple[str, ...]) -> str:
        code = secrets.token_hex(16)
        with self._lock:
            self._state.codes[code] = _Code(
                client_id, redirect_uri, scope, self._clock() + CODE_LIFETIME
            )
        return code

    def _client_credentials(self, request: SimRequest) -> tuple[str, str]:
        client_id = request.form.get("client_id", "")
        secret = request.form.get("client_secret", "")
        authorization = request.headers.get("authorization", "")
        if authorization[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(authorization[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, secret = client_id or basic_id, secret or basic_secret
        return client_id, secret

    def _token(self, request: SimRequest) -> Response:
        form = request.form
        grant_type = form.get("grant_type", "")
        client_id, secret = self._client_credentials(request)
        if not grant_type or not client_id or not secret:
            self._bump("invalid_request")
            return _oauth_error("invalid_request")
        if client_id != self.client_id or not hmac.compare_digest(
            secret.encode(), self._client_secret.encode()
        ):
            self._bump("invalid_client")
            return _oauth_error("invalid_client")
        if grant_type == "authorization_code":
            return self._code_grant(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        self._bump("unsupported_grant_type")
        return _oauth_error("unsupported_grant_type")

    def _code_grant(self, form: Mapping[str, str]) -> Response:
        code, redirect_uri = form.get("code", ""), form.get("redirect_uri", "")
        if not code or not redirect_uri:
            self._bump("invalid_request")
            return _oauth_error("invalid_request")
        now = self._clock()
        with self._lock:
            entry = self._state.codes.pop(code, None)
            if (
                entry is None
                or entry.expires_at <= now
                or entry.client_id != self.client_id
                or entry.redirect_uri != redirect_uri
            ):
                self._state.counters["invalid_grant"] += 1
                return _oauth_error("invalid_grant")
            self._state.counters["code_grants"] += 1
            tokens = self._issue_locked(entry.scope)
        return _json(200, tokens, headers=(("Cache-Control", "no-store"),))

    def _refresh_grant(self, form: Mapping[str, str]) -> Response:
        refresh_token = form.get("refresh_token", "")
        if not refresh_token:
            self._bump("invalid_request")
            return _oauth_error("invalid_request")
        with self._lock:
            scope = self._state.refresh.pop(refresh_token, None)
            if scope is None:
                self._state.counters["invalid_grant"] += 1
                return _oauth_error("invalid_grant")
            self._state.counters["refresh_grants"] += 1
            tokens = self._issue_locked(scope)
        return _json(200, tokens, headers=(("Cache-Control", "no-store"),))

    def _data(self, endpoint: str, request: SimRequest) -> Response:
        if "access_token" in request.query:
            self._bump("token_in_query", "invalid_token")
            return _api_error(403, 2, "Invalid access token")
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        now = self._clock()
        account, data_now = self._account, self._clock() - self.time_offset
        params = {**request.form, **request.query}
        scope = DATA_SCOPES[endpoint]
        series = None
        if endpoint == "getmeasure":
            series = account.weather_series(params.get("device_id", ""),
                                            params.get("module_id") or None)
            scope = scope if series is None else series.scope
        with self._lock:
            grant = self._state.access.get(token) if scheme.lower() == "bearer" else None
            counters = self._state.counters
            if grant is None:
                counters["invalid_token"] += 1
                return _api_error(403, 2, "Invalid access token")
            if grant.expires_at <= now:
                counters["expired_token"] += 1
                return _api_error(403, 3, "Access token expired")
            if scope not in grant.scope:
                counters["missing_scope"] += 1
                return _api_error(403, 13, "Application does not have the good scope rights")
            if self._over_rate_limit_locked(now):
                counters["rate_limited"] += 1
                return _api_error(429, 26, "User usage reached")
        device_id = params.get("device_id") or None
        if endpoint in ("getmeasure", "getroommeasure"):
            return self._measure(endpoint, params, series, int(data_now), now)
        if endpoint == "homesdata":
            body = account.homesdata_body(int(data_now))
        elif endpoint == "homestatus":
            status = account.homestatus_body(params.get("home_id", ""), int(data_now))
            if status is None:
                self._bump("home_not_found")
                return _api_error(400, 21, "Invalid home_id")
            body = status
        elif endpoint == "getstationsdata":
            favorites = params.get("get_favorites", "").lower() in ("true", "1")
            if device_id is not None and account.find_station(device_id) is None:
                self._bump("device_not_found")
                return _api_error(403, 9, "Device not found")
            body = account.stations_body(data_now, favorites=favorites, device_id=device_id)
        else:
            body = account.homecoaches_body(data_now)
            if device_id is not None:
                body["devices"] = [d for d in body["devices"] if d["_id"] == device_id]
                if not body["devices"]:
                    self._bump("device_not_found")
                    return _api_error(403, 9, "Device not found")
        self._bump("data_ok", f"{endpoint}_ok")
        document = {"body": body, "status": "ok", "time_exec": 0.03, "time_server": int(now)}
        return _json(200, document)

    def _measure(self, endpoint: str, params: Mapping[str, str], series: SimSeries | None,
                 data_now: int, now: float) -> Response:
        if endpoint == "getmeasure":
            if not params.get("device_id"):
                return self._bad_measure(10, "Missing device_id")
            if series is None:
                self._bump("device_not_found")
                return _api_error(403, 9, "Device not found")
            known = (*WEATHER_TYPES, *DERIVED_TYPES)
        else:
            if not params.get("home_id") or not params.get("room_id"):
                return self._bad_measure(10, "Missing home_id or room_id")
            series = self._account.room_series(params["home_id"], params["room_id"])
            if series is None:
                return self._bad_measure(21, "Invalid home_id or room_id")
            known = (*ROOM_TYPES, *DERIVED_TYPES)
        scale, kinds = params.get("scale", ""), params.get("type", "")
        if not scale or not kinds:
            return self._bad_measure(10, "Missing scale or type")
        types = [kind.strip().lower() for kind in kinds.split(",")]
        if scale not in SCALES or any(kind not in known for kind in types):
            return self._bad_measure(21, "Invalid scale or type")
        try:
            begin = int(params.get("date_begin") or self._account.history.start)
            end = int(params.get("date_end") or data_now)
            limit = int(params.get("limit") or MAX_LIMIT)
        except ValueError:
            return self._bad_measure(21, "Invalid date_begin, date_end or limit")
        if not 1 <= limit <= MAX_LIMIT:
            return self._bad_measure(21, "Invalid limit")
        readings = self._account.history.measure(
            series, types, scale, begin, end, now=data_now, limit=limit,
            real_time=params.get("real_time", "").lower() == "true")
        optimize = params.get("optimize", "true").lower() != "false"
        with self._lock:
            self._state.counters.update(
                {"data_ok": 1, f"{endpoint}_ok": 1, "measure_readings": len(readings)})
        document = {"body": shape(readings, optimize), "status": "ok", "time_exec": 0.05,
                    "time_server": int(now)}
        return _json(200, document)

    def _bad_measure(self, code: int, message: str) -> Response:
        self._bump("bad_measure_request")
        return _api_error(400, code, message)

    def _over_rate_limit_locked(self, now: float) -> bool:
        if not self._rate_limits:
            return False
        calls = self._state.data_calls
        longest = max(window for _, window in self._rate_limits)
        while calls and calls[0] <= now - longest:
            calls.popleft()
        for limit, window in self._rate_limits:
            if sum(1 for t in calls if t > now - window) >= limit:
                return True
        calls.append(now)
        return False


def _fault_response(fault: Fault) -> Response:
    kind = fault.kind
    if kind is FaultKind.JSON_ERROR:
        return _api_error(fault.status, fault.code or 0, fault.message)
    if kind is FaultKind.OAUTH_ERROR:
        return _oauth_error(fault.message or "invalid_request", fault.status)
    if kind is FaultKind.HTML_ERROR:
        reason = _reason(fault.status)
        return Response(
            fault.status, pages.proxy_error_page(fault.status, reason).encode(), "text/html"
        )
    if kind is FaultKind.MALFORMED_JSON:
        return Response(200, b'{"body": {"devices": [}, "status": "ok", time_server: }')
    if kind is FaultKind.RAW_ANSWER:
        return Response(fault.status, fault.body)
    if kind is FaultKind.HUGE_ANSWER:
        return Response(200, b"", transport="huge")
    if kind is FaultKind.TRUNCATED_BODY:
        document = {"body": {"devices": [], "user": {}}, "status": "ok", "time_server": 0}
        return _json(200, document, transport="truncate")
    return Response(0, b"", transport="reset")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeNetatmo/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 60
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def log_message(self, format: str, *args: Any) -> None:
        # The stdlib would print the request line, query (and any token in it) included.
        log.debug("fake netatmo: HTTP error on %s", urlsplit(self.path or "").path)

    def _serve(self) -> None:
        cloud = self.server.cloud
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        content_type = self.headers.get("Content-Type", "")
        form: dict[str, str] = {}
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            form = _first_values(raw_body.decode("utf-8", "replace"))
        request = SimRequest(
            method=self.command,
            path=url.path,
            query=_first_values(url.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            form=form,
        )
        response, fault = cloud.handle(request)
        if fault is not None and fault.kind is FaultKind.DRIP:
            response = dataclasses.replace(response, transport="drip")
        elif fault is not None and fault.wait > 0:
            time.sleep(fault.wait)
        if fault is not None and fault.kind is FaultKind.LOST_RESPONSE:
            response = Response(0, b"", transport="reset")
        cloud._record(request, self.path, ROUTES.get(url.path, "not_found"), response.status)
        # The query may carry a token (a client bug we refuse): log the path only.
        log.debug("fake netatmo: %s %s -> %s", self.command, url.path, response.status)
        if response.transport == "reset":
            self._reset()
            return
        if response.transport == "huge":
            assert fault is not None
            self._write_huge(fault.size)
            return
        self._write(response, drip=fault.wait if fault is not None else 0.0)

    def _write_huge(self, size: int) -> None:
        self.close_connection = True
        head = (f"{self.protocol_version} 200 OK\r\nContent-Type: application/json\r\n"
                "Connection: close\r\n\r\n").encode("latin-1")
        start, end = b'{"body": {"devices": [], "pad": "', b'"}, "status": "ok"}'
        self.wfile.write(head + start)
        chunk = b"x" * 65536
        left = max(0, size - len(start) - len(end))
        with contextlib.suppress(OSError):  # the client stops reading, as it should
            while left > 0:
                self.wfile.write(chunk[:left])
                left -= min(left, len(chunk))
            self.wfile.write(end)

    def _write(self, response: Response, drip: float = 0.0) -> None:
        body = response.body
        sent = body[: len(body) // 2] if response.transport == "truncate" else body
        close = self.close_connection or response.transport == "truncate"
        lines = [
            f"{self.protocol_version} {response.status} {_reason(response.status)}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in response.headers),
        ]
        if close:
            lines.append("Connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if response.transport != "drip":
            self.wfile.write(head + sent)
            return
        answer = head + sent
        with contextlib.suppress(OSError):  # the client gave up, as it should
            for at in range(len(answer)):
                self.wfile.write(answer[at:at + 1])
                self.wfile.flush()
                time.sleep(drip)

    def _reset(self) -> None:
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _first_values(query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], cloud: FakeNetatmoCloud,
                 beyond_loopback: bool = False) -> None:
        host = address[0]
        if not beyond_loopback and host not in ("127.0.0.1", "::1", "localhost") and \
                not host.startswith("127."):
            raise ValueError(f"the fake Netatmo cloud binds loopback only, not {host!r}")
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.cloud = cloud
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is routine here, not worth a stderr traceback.
        log.debug("fake netatmo: error while serving a request", exc_info=True)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
