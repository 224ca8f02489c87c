"""The two ways to authorize from a browser: Netatmo's authorization-code flow (authorize,
then the callback with a single-use state bound to the browser by a cookie) and a pasted
refresh token (the form, guarded by FormGuard)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import bottle

from netatmo_exporter.adapters.lan.clients import client_key
from netatmo_exporter.adapters.lan.refusals import RefusalCounts
from netatmo_exporter.adapters.lan.token_call_limit import TokenCallLimit
from netatmo_exporter.adapters.pages.oauth_flow import (
    PendingStates,
    StateProblem,
    TooManyPending,
    authorize_url,
    callback_answer,
)
from netatmo_exporter.adapters.pages.templates import Refusal, Templates
from netatmo_exporter.adapters.system.logging import LogThrottle
from netatmo_exporter.adapters.web.form_guard import FormGuard
from netatmo_exporter.adapters.web.site_address import SiteAddress
from netatmo_exporter.domain.errors import InvalidGrant, NetatmoError
from netatmo_exporter.domain.ports import Authorizations, EventLog

MAX_TOKEN_LENGTH = 1024
STATE_COOKIE = "netatmo_exporter_state"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9|._~+/=:-]+")


class OAuthPages:
    """`register_secret` hands each code and pasted token to the log redactor before
    anything could log it. Each LAN client's calls to Netatmo's token endpoint come out of
    `budget`; refusals are counted in `refusals` and logged at most once per client and
    event per window."""

    def __init__(self, templates: Templates, address: SiteAddress, forms: FormGuard,
                 tokens: Authorizations, states: PendingStates, *, api_url: str,
                 client_id: str, scopes: tuple[str, ...],
                 register_secret: Callable[[str], None], log: EventLog | None,
                 budget: TokenCallLimit | None = None, refusals: RefusalCounts | None = None
                 ) -> None:
        self._templates = templates
        self._address = address
        self._forms = forms
        self._tokens = tokens
        self._states = states
        self._api_url = api_url
        self._client_id = client_id
        self._scopes = scopes
        self._register_secret = register_secret
        self._log = log
        self._budget = budget or TokenCallLimit()
        self._refusals = refusals or RefusalCounts()
        self._throttle = LogThrottle()

    def handlers(self) -> dict[str, Callable[[], Any]]:
        return {"authorize": self.authorize, "callback": self.callback,
                "set_token": self.set_token}

    def authorize(self) -> str:
        mismatch = self._address.host_mismatch()
        if mismatch and bottle.request.query.get("anyway") != "1":
            return self._templates.render(
                "interstitial", title="Check the address", request_host=mismatch,
                external_url=self._address.external_url,
                redirect_uri=self._address.configured_redirect_uri())
        redirect_uri = self._address.redirect_uri()
        try:
            state = self._states.issue(redirect_uri, _client())
        except TooManyPending:
            self._refusals.add("authorizations_pending")
            bottle.response.set_header("Retry-After", "60")
            return self._refused(Refusal(
                429, "Too many authorizations in progress",
                "Many authorizations were started from the LAN in the last minutes and "
                "none is dropped for a new one. Nothing changed.",
                "Try again in a few minutes."), "authorization_refused")
        bottle.response.set_cookie(
            STATE_COOKIE, state, path="/auth", httponly=True, samesite="lax",
            max_age=int(self._states.lifetime), **self._address.cookie_options())
        bottle.response.status = 302
        bottle.response.set_header("Location", authorize_url(
            self._api_url, self._client_id, redirect_uri, self._scopes, state))
        return ""

    def callback(self) -> str:
        return self._refusing(self._callback, "authorization_refused")

    def set_token(self) -> str:
        return self._refusing(self._set_token, "refresh_token_refused")

    def _callback(self) -> str:
        query = bottle.request.query
        try:
            answer = callback_answer({name: query.get(name) or ""
                                      for name in ("code", "error", "state")})
        except ValueError as exc:
            raise Refusal(400, "Malformed answer", f"The authorization answer is malformed: "
                          f"{exc}.", "Start again from the status page.") from None
        self._check_budget()  # before the state is spent: the browser may try again
        bottle.response.delete_cookie(STATE_COOKIE, path="/auth")
        redeemed = self._states.redeem(answer.state, bottle.request.get_cookie(STATE_COOKIE))
        if answer.error == "access_denied":
            raise Refusal(403, "Authorization refused",
                          "Netatmo says the authorization was refused on its page. "
                          "Nothing changed.",
                          "To authorize, start again from the status page and choose Accept.")
        if answer.error:
            raise Refusal(400, "Netatmo reported an error",
                          f"Netatmo answered with the error “{answer.error}”. Nothing changed.",
                          "Check the redirect URI registered for your app and the scopes, "
                          "then start again from the status page.")
        if isinstance(redeemed, StateProblem):
            raise Refusal(400, "Authorization answer refused",
                          redeemed.value + " Nothing changed.",
                          "Start again from the status page, in this browser.")
        if answer.code is None:
            raise Refusal(400, "No authorization code",
                          "Netatmo's answer carries no code. Nothing changed.",
                          "Start again from the status page.")
        self._register_secret(answer.code)
        self._spend_budget()
        try:
            self._tokens.authorize_with_code(answer.code, redeemed, " ".join(self._scopes))
        except NetatmoError as exc:
            raise Refusal(502, "Netatmo refused the code", f"{exc}. Nothing changed.",
                          "If Netatmo says invalid_grant here, the redirect URI registered "
                          "for your app may differ from " + redeemed +
                          ", or the code was already used; start again.") from None
        return _see_other("/?done=authorized")

    def _set_token(self) -> str:
        form = bottle.request.forms
        self._forms.check(form.get("form_token") or "")
        pasted = (form.get("refresh_token") or "").strip()
        if not pasted:
            raise Refusal(400, "No refresh token", "The form was sent without a refresh token.",
                          "Paste the refresh token from the Netatmo developer console.")
        if len(pasted) > MAX_TOKEN_LENGTH or not _TOKEN_SHAPE.fullmatch(pasted):
            raise Refusal(400, "Not a refresh token",
                          "What was pasted does not look like a Netatmo refresh token. "
                          "The current authorization is unchanged.",
                          "Copy the refresh token (not the access token, not a URL) from "
                          "the token generator in the Netatmo developer console.")
        self._register_secret(pasted)
        self._spend_budget()
        try:
            self._tokens.authorize_with_refresh_token(pasted)
        except InvalidGrant:
            raise Refusal(400, "Refresh token refused",
                          "Netatmo does not accept this refresh token (invalid_grant). "
                          "The current authorization is unchanged.",
                          "A refresh token works only once and only for the app it was made "
                          "for: generate a new one for this client id and paste it "
                          "right away.") from None
        except NetatmoError as exc:
            raise Refusal(502, "Refresh token not checked",
                          f"{exc}. The current authorization is unchanged.",
                          "Try again in a minute.") from None
        return _see_other("/?done=token")

    def _check_budget(self) -> None:
        self._over_budget(self._budget.wait(_client()))

    def _spend_budget(self) -> None:
        self._over_budget(self._budget.take(_client()))

    def _over_budget(self, wait: float) -> None:
        if wait <= 0:
            return
        self._refusals.add("token_call_limited")
        seconds = math.ceil(wait)
        bottle.response.set_header("Retry-After", str(seconds))
        raise Refusal(429, "Too many attempts",
                      "This exporter asks Netatmo for tokens only a few times a minute for "
                      "requests from the LAN. Nothing changed.",
                      f"Try again in {seconds} s.")

    def _refusing(self, page: Callable[[], str], event: str) -> str:
        try:
            return page()
        except Refusal as refusal:
            return self._refused(refusal, event)

    def _refused(self, refusal: Refusal, event: str) -> str:
        held_back = self._throttle.admit((event, _client(), refusal.title))
        if self._log is not None and held_back is not None:
            self._log.warning(event, path=bottle.request.path, reason=refusal.title,
                              remote=bottle.request.environ.get("REMOTE_ADDR", ""),
                              held_back=held_back)
        return self._templates.refusal(refusal)


def _client() -> str:
    """The browser's client address (never X-Forwarded-For, which anyone can send)."""
    return client_key(str(bottle.request.environ.get("REMOTE_ADDR", "")))


def _see_other(location: str) -> str:
    bottle.response.status = 303
    bottle.response.set_header("Location", location)
    return ""
