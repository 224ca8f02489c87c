"""The browser side of OAuth: unguessable single-use states, the authorize URL, and
reading the callback's answer. Shared by the web UI and the headless `login` command."""

from __future__ import annotations

import enum
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from netatmo_exporter.domain.ports import Clock

STATE_LIFETIME = 600.0
MAX_PENDING_STATES = 1024
MAX_PENDING_PER_CLIENT = 4
MAX_PARAM_LENGTH = 2048


def new_state() -> str:
    return secrets.token_urlsafe(32)


def authorize_url(api_url: str, client_id: str, redirect_uri: str, scopes: tuple[str, ...],
                  state: str) -> str:
    query = urlencode({
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "response_type": "code",
    })
    return f"{api_url.rstrip('/')}/oauth2/authorize?{query}"


class StateProblem(enum.Enum):
    MISSING = "The answer from Netatmo carries no state, so it cannot be matched to an " \
              "authorization started here."
    NOT_THIS_BROWSER = "This browser did not start the authorization that this answer " \
                       "belongs to (its state cookie is missing or different)."
    UNKNOWN = "This authorization answer was already used, or the exporter restarted " \
              "since it was started."
    EXPIRED = "This authorization answer came too late: authorizations expire after " \
              "10 minutes."


class TooManyPending(Exception):
    """Every slot for authorizations in progress is taken; none is dropped for a new one."""


class PendingStates:
    """States handed out by `/auth/authorize`, each usable once, for a limited time, each
    with the redirect URI it was issued for (the code exchange must name the same one).

    Bounded per client (a browser's address): a client's new state drops its own oldest
    beyond `per_client`, never another client's, so nobody else's requests can evict an
    authorization in progress. Over all clients at most `capacity`; beyond, `issue`
    refuses (TooManyPending) until states expire.
    """

    def __init__(self, clock: Clock, lifetime: float = STATE_LIFETIME,
                 capacity: int = MAX_PENDING_STATES,
                 per_client: int = MAX_PENDING_PER_CLIENT) -> None:
        self._clock = clock
        self._lifetime = lifetime
        self._capacity = capacity
        self._per_client = per_client
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, tuple[float, str, str]] = OrderedDict()

    @property
    def lifetime(self) -> float:
        return self._lifetime

    def issue(self, redirect_uri: str, client: str = "") -> str:
        state = new_state()
        now = self._clock.now()
        with self._lock:
            # Kept a lifetime past expiry, so a late answer is told it came too late.
            for old, (expires_at, _, _) in list(self._pending.items()):
                if expires_at + self._lifetime < now:
                    del self._pending[old]
            mine = [old for old, (_, _, owner) in self._pending.items() if owner == client]
            while len(mine) >= self._per_client:
                del self._pending[mine.pop(0)]
            if len(self._pending) >= self._capacity:
                raise TooManyPending()
            self._pending[state] = (now + self._lifetime, redirect_uri, client)
        return state

    def redeem(self, state: str | None, cookie: str | None) -> StateProblem | str:
        """Consume `state` if this browser (its cookie) started it: its redirect URI, or
        the reason it is refused."""
        if not state:
            return StateProblem.MISSING
        if not cookie or not hmac.compare_digest(state.encode(), cookie.encode()):
            return StateProblem.NOT_THIS_BROWSER
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None:
            return StateProblem.UNKNOWN
        expires_at, redirect_uri, _ = pending
        if self._clock.now() >= expires_at:
            return StateProblem.EXPIRED
        return redirect_uri


@dataclass(frozen=True)
class CallbackAnswer:
    """What Netatmo put on the redirect URI: a code, or an error, and the state."""

    code: str | None
    error: str | None
    state: str | None


def parse_callback(text: str) -> CallbackAnswer:
    """Read a pasted redirect URL (or just its query string). Raises ValueError."""
    text = text.strip()
    query = urlsplit(text).query if "?" in text else text
    params = parse_qs(query, keep_blank_values=True, max_num_fields=20)
    return callback_answer({key: values[0] for key, values in params.items()})


def callback_answer(params: dict[str, str]) -> CallbackAnswer:
    def one(name: str) -> str | None:
        value = params.get(name)
        if value is None or value == "":
            return None
        if len(value) > MAX_PARAM_LENGTH or not (value.isascii() and value.isprintable()):
            raise ValueError(f"the {name} parameter is malformed")
        return value

    return CallbackAnswer(one("code"), one("error"), one("state"))
