"""HTTP basic authentication from the web configuration file, in front of every page but
the liveness probe."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from netatmo_exporter.adapters.lan.clients import client_key, client_network
from netatmo_exporter.adapters.lan.fair_gate import FairGate
from netatmo_exporter.adapters.lan.refusals import RefusalCounts
from netatmo_exporter.adapters.system.logging import LogThrottle
from netatmo_exporter.adapters.web.http_policy import UNAUTHENTICATED_PATHS
from netatmo_exporter.adapters.web.wsgi import WSGIApp, plain_answer
from netatmo_exporter.domain.ports import EventLog

AUTH_REALM = "netatmo-exporter"
MAX_CACHED_CREDENTIALS = 64
# Requests waiting on another's check of the same credential (a browser's parallel one);
# each holds a server thread, so few, and for a check's time at most.
MAX_FOLLOWERS = 1
CHECK_ALLOWANCE = 5.0


@dataclass(eq=False)
class _Flight:
    """One bcrypt check running, and the requests with the same credential waiting on it."""

    done: threading.Event = field(default_factory=threading.Event)
    ok: bool | None = None
    followers: int = 0


class BasicAuth:
    """HTTP basic authentication against bcrypt hashes; every path but `/-/healthy`.

    A verified credential is remembered (as a salted digest, never in clear), so a scrape
    costs a hash lookup, not bcrypt. Unremembered credentials take turns at a `FairGate`:
    one check at a time, one per client address; waiting, a network that passed a check
    before goes first, then one that made no attempt lately, then the least recently
    served. A flood of guesses from one address, or from many in turn, then costs the
    guesser its own turns only: another address's first check of a correct password goes
    next. Refusals are counted by reason and logged at most once per address and user per
    window.
    """

    def __init__(self, app: WSGIApp, users: dict[str, bytes], log: EventLog | None,
                 refusals: RefusalCounts | None = None, gate: FairGate | None = None
                 ) -> None:
        self._app = app
        self._users = users
        self._log = log
        self._refusals = refusals or RefusalCounts()
        self._gate = gate or FairGate()
        self._throttle = LogThrottle()
        self._salt = secrets.token_bytes(16)
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._in_flight: dict[bytes, _Flight] = {}
        self._lock = threading.Lock()
        # bcrypt loads only with basic authentication on: a service without never holds it.
        import bcrypt

        self._checkpw = bcrypt.checkpw
        self._dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=10))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in UNAUTHENTICATED_PATHS:
            return self._app(environ, start_response)
        user, password = _credentials(environ.get("HTTP_AUTHORIZATION", ""))
        if user is None or password is None:
            return _unauthorized(start_response)
        digest = hashlib.sha256(self._salt + user.encode() + b"\0" + password.encode()).digest()
        with self._lock:
            known = digest in self._verified
            if known:
                self._verified.move_to_end(digest)
        if not known:
            remote = environ.get("REMOTE_ADDR", "")
            client = client_key(remote)
            ok = self._verify(digest, user, password, client, client_network(remote))
            if ok is None:
                self._refused("password_busy", remote, client, user, environ)
                return _busy(start_response)
            if not ok:
                self._refused("password_wrong", remote, client, user, environ)
                return _unauthorized(start_response)
        environ["REMOTE_USER"] = user
        return self._app(environ, start_response)

    def _verify(self, digest: bytes, user: str, password: str, client: str, network: str
                ) -> bool | None:
        """The check of an unremembered credential; None when it got no turn. A browser
        sends the same credential on several connections at once (a page and its
        stylesheet): those wait for the one check in flight instead of being turned away."""
        with self._lock:
            flight = self._in_flight.get(digest)
            if flight is not None and flight.followers < MAX_FOLLOWERS:
                flight.followers += 1
            elif flight is not None:
                return None
        if flight is not None:
            flight.done.wait(self._gate.patience + CHECK_ALLOWANCE)
            return flight.ok
        if not self._gate.enter(client, network):
            return None
        flight = _Flight()
        with self._lock:
            self._in_flight[digest] = flight
        try:
            flight.ok = self._check(user, password)
        finally:
            self._gate.leave(client)
            with self._lock:
                del self._in_flight[digest]
                if flight.ok:
                    self._gate.trust(network)
                    self._verified[digest] = None
                    while len(self._verified) > MAX_CACHED_CREDENTIALS:
                        self._verified.popitem(last=False)
            flight.done.set()
        return flight.ok

    def _refused(self, reason: str, remote: str, client: str, user: str,
                 environ: dict[str, Any]) -> None:
        self._refusals.add(reason)
        held_back = self._throttle.admit((reason, client, user))
        if self._log is not None and held_back is not None:
            event = "basic_auth_refused" if reason == "password_wrong" else "basic_auth_busy"
            self._log.warning(event, user=user, remote=remote,
                              path=environ.get("PATH_INFO", ""), held_back=held_back)

    def _check(self, user: str, password: str) -> bool:
        hashed = self._users.get(user)
        try:
            # An unknown user costs a bcrypt check too, so timing does not tell users apart.
            matches = self._checkpw(password.encode(), hashed or self._dummy)
        except ValueError:  # bcrypt 5 refuses passwords over 72 bytes
            return False
        return hashed is not None and matches


def _credentials(header: str) -> tuple[str | None, str | None]:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > 1024:
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, colon, password = decoded.partition(":")
    if not colon or not user.isprintable():
        return None, None
    return user, password


def _unauthorized(start_response: Callable[..., Any]) -> list[bytes]:
    return plain_answer(
        start_response, "401 Unauthorized",
        "401 Unauthorized: this exporter asks for a user name and password",
        [("WWW-Authenticate", f'Basic realm="{AUTH_REALM}", charset="UTF-8"')])


def _busy(start_response: Callable[..., Any]) -> list[bytes]:
    return plain_answer(
        start_response, "429 Too Many Requests",
        "429 Too Many Requests: other password checks are running; try again",
        [("Retry-After", "1")])

