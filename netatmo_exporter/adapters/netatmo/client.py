"""Netatmo's HTTP API over httpx: the token endpoint and the data endpoints."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import tenacity

from netatmo_exporter import __version__
from netatmo_exporter.adapters.netatmo.answer import (
    DATA_DEADLINE,
    Answer,
    has_lone_surrogate,
    parse_json,
    read_answer,
    transport_errors,
)
from netatmo_exporter.adapters.netatmo.energy_payload import parse_home_status, parse_homes
from netatmo_exporter.adapters.netatmo.payload import parse_devices
from netatmo_exporter.adapters.system.trust_store import trust_context
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.call_policy import MAX_BACKOFF
from netatmo_exporter.domain.energy.model import HomeSetup, HomeStatus
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
from netatmo_exporter.domain.ports import Clock, EventLog
from netatmo_exporter.domain.weather.model import Station

if TYPE_CHECKING:
    from netatmo_exporter.domain.history.plan import Row

NETATMO_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
# A refresh whose answer is lost has already rotated the token at Netatmo, so the token
# endpoint gets a longer read timeout than the data endpoints: waiting is cheaper than a
# new authorization.
TOKEN_READ_TIMEOUT_FACTOR = 3.0
MAX_TOKEN_LIFETIME = 366 * 86400.0
_ACCESS_TOKEN_CODES = {2, 3}
_RATE_LIMIT_CODES = {26, 11}
_MISSING_SCOPE_CODE = 13
# Flat-string errors (`{"error": "too_many_connections"}`) seen from Netatmo's front servers.
_RATE_LIMIT_WORDS = ("too_many", "rate_limit", "usage_reached")

T = TypeVar("T")


class NetatmoClient:
    """Satisfies `TokenEndpoint`, `WeatherSource`, `EnergySource` and `HistorySource`.

    A data call is one request: its retries belong to the call policy, which books each
    in the budget and ends its waits on a stop. A token request is retried after transient
    failures (timeouts, connection errors, 5xx, proxy error pages, garbled bodies) with
    exponential backoff, `attempts` tries at most; `close()` ends those waits at once.
    Everything else is classified into a domain error at once. Tokens travel in form
    bodies and headers, never in URLs.
    """

    def __init__(
        self,
        api_url: str,
        client_id: str,
        client_secret: str,
        clock: Clock,
        *,
        timeout: httpx.Timeout = NETATMO_TIMEOUT,
        attempts: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] | None = None,
        deadline: float = DATA_DEADLINE,
    ) -> None:
        self._http = httpx.Client(
            base_url=api_url.rstrip("/"),
            timeout=timeout,
            headers={"User-Agent": f"netatmo-exporter/{__version__}"},
            follow_redirects=False,
            verify=trust_context(),
        )
        self._token_timeout = httpx.Timeout(
            timeout.read * TOKEN_READ_TIMEOUT_FACTOR if timeout.read else None,
            connect=timeout.connect)
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._attempts = attempts
        self._backoff = backoff
        self._deadline = deadline
        self._log: EventLog | None = None
        self._closing = threading.Event()
        self._sleep = sleep or self._wait_unless_closed
        self._counts_lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def report_to(self, log: EventLog) -> None:
        """Where to say that an answer was repaired (a name's broken text replaced)."""
        self._log = log

    def _wait_unless_closed(self, seconds: float) -> None:
        self._closing.wait(seconds)

    def close(self) -> None:
        self._closing.set()
        self._http.close()

    def request_counts(self) -> dict[tuple[str, str], int]:
        """Requests sent so far, by (endpoint, outcome)."""
        with self._counts_lock:
            return dict(self._counts)

    def exchange_code(self, code: str, redirect_uri: str, scope: str) -> Token:
        return self._token_request({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "scope": scope,
        })

    def refresh(self, refresh_token: str) -> Token:
        return self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def fetch_stations(self, access_token: str, favorites: bool,
                       device_id: str | None = None) -> tuple[Station, ...]:
        params = {"get_favorites": "true"} if favorites else {}
        if device_id is not None:
            params["device_id"] = device_id
        return self._data_request("getstationsdata", access_token, params,
                                  lambda answer: parse_devices(answer, "station"))

    def fetch_homecoaches(self, access_token: str,
                          device_id: str | None = None) -> tuple[Station, ...]:
        params = {} if device_id is None else {"device_id": device_id}
        return self._data_request("gethomecoachsdata", access_token, params,
                                  lambda answer: parse_devices(answer, "homecoach"))

    def fetch_homes(self, access_token: str) -> tuple[HomeSetup, ...]:
        return self._data_request("homesdata", access_token, {}, parse_homes)

    def fetch_home_status(self, access_token: str, home_id: str) -> HomeStatus:
        return self._data_request("homestatus", access_token, {"home_id": home_id},
                                  lambda answer: parse_home_status(answer, home_id))

    def fetch_measure(self, access_token: str, device_id: str, module_id: str | None,
                      types: Sequence[str], date_begin: int, date_end: int, limit: int
                      ) -> tuple[Row, ...]:
        params = {"device_id": device_id, **({} if module_id is None else {"module_id": module_id})}
        return self._measure_request("getmeasure", access_token, params, types, date_begin,
                                     date_end, limit)

    def fetch_room_measure(self, access_token: str, home_id: str, room_id: str,
                           types: Sequence[str], date_begin: int, date_end: int, limit: int
                           ) -> tuple[Row, ...]:
        return self._measure_request("getroommeasure", access_token,
                                     {"home_id": home_id, "room_id": room_id}, types,
                                     date_begin, date_end, limit)

    def _measure_request(self, endpoint: str, access_token: str, params: dict[str, str],
                         types: Sequence[str], date_begin: int, date_end: int, limit: int
                         ) -> tuple[Row, ...]:
        # Only history calls measures: a service without them never loads their parser.
        from netatmo_exporter.adapters.netatmo.measure_payload import parse_measure

        params = {**params, "scale": "max", "type": ",".join(types),
                  "date_begin": str(date_begin), "date_end": str(date_end),
                  "limit": str(limit), "optimize": "true", "real_time": "false"}
        return self._data_request(endpoint, access_token, params,
                                  lambda answer: parse_measure(answer, endpoint, len(types)))

    def _token_request(self, form: dict[str, str]) -> Token:
        form = {**form, "client_id": self._client_id, "client_secret": self._client_secret}

        def send() -> Token:
            return self._exchange("token", "POST", "/oauth2/token", self._token_from,
                                  deadline=self._deadline * TOKEN_READ_TIMEOUT_FACTOR,
                                  data=form, timeout=self._token_timeout)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, TransientError | BadResponse)
            ),
            stop=(tenacity.stop_after_attempt(self._attempts)
                  | tenacity.stop_when_event_set(self._closing)),
            wait=tenacity.wait_exponential(multiplier=self._backoff, max=30),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(send)

    def _data_request(
        self, endpoint: str, access_token: str, params: dict[str, str],
        parse: Callable[[Any], T],
    ) -> T:
        return self._exchange(endpoint, "GET", f"/api/{endpoint}",
                              lambda answer: parse(parse_json(answer, endpoint)),
                              deadline=self._deadline, params=params,
                              headers={"Authorization": f"Bearer {access_token}"})

    def _exchange(self, endpoint: str, method: str, path: str, read: Callable[[Answer], T],
                  *, deadline: float, **kwargs: Any) -> T:
        """One request, its answer checked and read; counted once by its outcome."""
        if self._closing.is_set():
            raise TransientError(f"Netatmo {endpoint}: not sent, the exporter is stopping",
                                 "stopped")
        try:
            with transport_errors(endpoint):
                answer = read_answer(self._http, endpoint, method, path, deadline=deadline,
                                     **kwargs)
            _raise_for_answer(endpoint, answer)
        except NetatmoError as exc:
            self._count(endpoint, exc.reason)
            raise
        try:
            result = _guarded(read, answer, endpoint)
        except BadResponse as exc:
            self._count(endpoint, exc.reason)
            raise
        except NetatmoError:
            # A well-formed answer reporting a failure of its own (a home whose relay is
            # offline): the request went well.
            self._count(endpoint, "ok")
            raise
        self._count(endpoint, "ok")
        if self._log is not None and has_lone_surrogate(answer):
            self._log.warning("netatmo_answer_text_replaced", endpoint=endpoint,
                              why="half a UTF-16 pair in a name or text, replaced by U+FFFD")
        return result

    def _count(self, endpoint: str, outcome: str) -> None:
        with self._counts_lock:
            self._counts[(endpoint, outcome)] += 1

    def _token_from(self, response: Answer) -> Token:
        answer = parse_json(response, "token")
        if not isinstance(answer, Mapping):
            raise BadResponse("Netatmo token answer is not a JSON object")
        access = answer.get("access_token")
        refresh = answer.get("refresh_token")
        expires_in = answer.get("expires_in", answer.get("expire_in"))
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            raise BadResponse("Netatmo token answer lacks access_token or refresh_token")
        if not (_token_text(access) and _token_text(refresh)):
            # It goes into an Authorization header and a form: printable ASCII only.
            raise BadResponse("Netatmo token answer holds a token that is not printable "
                              "ASCII text of at most 4096 characters")
        if (isinstance(expires_in, bool) or not isinstance(expires_in, int | float)
                or not 0 < expires_in <= MAX_TOKEN_LIFETIME):
            expires_in = 10800
        return Token.from_grant(access, refresh, float(expires_in), self._clock.now(),
                                _scope(answer.get("scope")))


def _guarded(read: Callable[[Answer], T], answer: Answer, endpoint: str) -> T:
    """`read(answer)`, with any slip of a parser on odd input as a `BadResponse`: a bad
    answer is one failed call, never a dead poller."""
    try:
        return read(answer)
    except (ValueError, TypeError, ArithmeticError, LookupError, AttributeError,
            RecursionError) as exc:
        raise BadResponse(f"Netatmo {endpoint}: the answer could not be read "
                          f"({type(exc).__name__})") from None


def _token_text(text: str) -> bool:
    return len(text) <= 4096 and text.isascii() and text.isprintable() and " " not in text


def _scope(value: object) -> tuple[str, ...] | None:
    """The granted scopes (`["read_station", ...]` or one string); words that cannot be a
    scope name are left out."""
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list):
        return None
    return tuple(item for item in value if isinstance(item, str) and item
                 and _token_text(item))


def _error_body(answer: Answer) -> tuple[object, str]:
    """(code, message) of `{"error": {"code": N, "message": "..."}}`; a flat string error
    (`{"error": "too_many_connections"}`) is both the code and the message."""
    try:
        body = parse_json(answer, "error")
    except BadResponse:
        return None, ""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        message = error.get("message")
        return error.get("code"), message if isinstance(message, str) else ""
    if isinstance(error, str):
        return error, error
    return error, ""


def _is_rate_limit(code: object, status: int) -> bool:
    if status == 429 or (isinstance(code, int) and code in _RATE_LIMIT_CODES):
        return True
    return isinstance(code, str) and any(word in code.lower() for word in _RATE_LIMIT_WORDS)


def _retry_after(answer: Answer) -> float | None:
    try:
        seconds = float(answer.retry_after)
    except ValueError:
        return None
    return seconds if 0.0 <= seconds <= MAX_BACKOFF else None


def _raise_for_answer(endpoint: str, response: Answer) -> None:
    if 200 <= response.status < 300:
        return
    code, message = _error_body(response)
    status = response.status
    where = f"Netatmo {endpoint}"
    if _is_rate_limit(code, status):
        said = f"\"{code}\"" if isinstance(code, str) else f"code {code}"
        raise RateLimited(f"{where}: rate limited (HTTP {status}, {said}): backing off",
                          _retry_after(response))
    if status >= 500 or code is None:
        kind = "an HTML error page" if "html" in response.content_type else (
            "an unexpected body")
        raise TransientError(f"{where}: HTTP {status} with {kind}",
                             "server_error" if status >= 500 else "bad_response")
    if endpoint == "token":
        if code == "invalid_grant":
            raise InvalidGrant()
        if code == "invalid_client":
            raise InvalidClient()
        raise InvalidRequest(f"{where}: request refused ({code})")
    if code in _ACCESS_TOKEN_CODES:
        raise AccessTokenRejected(f"{where}: access token rejected (code {code}: {message})")
    if code == _MISSING_SCOPE_CODE:
        raise MissingScope(endpoint)
    if isinstance(code, str):
        raise ApiError(f"{where}: API error \"{code}\" (HTTP {status})")
    raise ApiError(f"{where}: API error code {code}: {message} (HTTP {status})")
