"""The exporter's own pages, on bottle: status, authorization, version, health and debug.

Every page gets the security headers (a WSGI wrapper adds them, so error pages too).
State-changing requests are guarded: the OAuth callback by a single-use state bound to
the browser by a cookie; the refresh-token form by a per-browser form token (an HMAC of
a cookie under a per-process key) and an Origin/Referer check.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bottle

from netatmo_exporter import __version__
from netatmo_exporter.adapters import energy_view, status_view
from netatmo_exporter.adapters.http_server import MAX_FORM_BYTES
from netatmo_exporter.adapters.oauth_flow import (
    STATE_LIFETIME,
    PendingStates,
    StateProblem,
    authorize_url,
    callback_answer,
)
from netatmo_exporter.adapters.web_guards import ANY_HOST_PATHS, HostPolicy, host_name
from netatmo_exporter.domain.authorization import AuthState, TokenManager
from netatmo_exporter.domain.energy import EnergySnapshot
from netatmo_exporter.domain.errors import InvalidGrant, NetatmoError
from netatmo_exporter.domain.ports import Clock, EventLog
from netatmo_exporter.domain.refresher import Refresher

COMMIT = "unknown"
VIEWS = Path(__file__).with_name("views")
STATIC = Path(__file__).with_name("static")
MAX_TOKEN_LENGTH = 1024
STATE_COOKIE = "netatmo_exporter_state"
FORM_COOKIE = "netatmo_exporter_form"
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9|._~+/=:-]+")
_COOKIE_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,100}")
DONE_MESSAGES = {
    "authorized": "Authorized. The first data arrives within a few seconds.",
    "token": "Refresh token accepted and saved. The first data arrives within a few seconds.",
}

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Form bodies above our own limit are refused before bottle reads them; this keeps
# bottle's limit (a process-wide class attribute) from ever being the one that acts.
bottle.BaseRequest.MEMFILE_MAX = max(bottle.BaseRequest.MEMFILE_MAX, MAX_FORM_BYTES * 2)


@dataclass(frozen=True)
class WebContext:
    tokens: TokenManager
    refresher: Refresher
    clock: Clock
    external_url: str
    client_id: str
    scopes: tuple[str, ...]
    api_url: str
    debug_handlers: bool
    version: str = __version__
    commit: str = COMMIT
    age_stale: float = 3600.0
    state_lifetime: float = STATE_LIFETIME
    register_secret: Callable[[str], None] = lambda _secret: None
    log: EventLog | None = None
    # Without a configured external URL, the redirect goes back to the address the
    # browser used (a Host the host policy accepts), as a LAN user would expect.
    external_url_configured: bool = True
    host_policy: HostPolicy = dataclasses.field(
        default_factory=lambda: HostPolicy("", (), ()))
    allowed_hosts_setting: str = "--web.allowed-hosts (NETATMO_EXPORTER_ALLOWED_HOSTS)"
    energy: Callable[[], EnergySnapshot | None] | None = None

    @property
    def redirect_uri(self) -> str:
        return self.external_url.rstrip("/") + "/auth/callback"


class Refusal(Exception):
    """A request the exporter turns down with a page that says why; nothing changed."""

    def __init__(self, status: int, title: str, message: str, fix: str = "") -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message
        self.fix = fix


class Templates:
    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx
        self._cache: dict[str, Any] = {}

    def render(self, name: str, **values: Any) -> str:
        template = self._cache.get(name)
        if template is None:
            template = bottle.SimpleTemplate(name=name, lookup=[str(VIEWS)])
            self._cache[name] = template
        bottle.response.content_type = "text/html; charset=utf-8"
        return str(template.render(version=self._ctx.version, **values))

    def refusal(self, refusal: Refusal) -> str:
        bottle.response.status = refusal.status
        return self.render("message", title=refusal.title, message=refusal.message,
                           fix=refusal.fix, kind="refusal")


def build_web_app(ctx: WebContext) -> WSGIApp:
    app = bottle.Bottle(catchall=True)
    app.config["autojson"] = False
    templates = Templates(ctx)
    states = PendingStates(ctx.clock, ctx.state_lifetime)
    form_key = secrets.token_bytes(32)
    pages = _Pages(ctx, templates, states, form_key)

    app.add_hook("before_request", _host_check(ctx, templates))
    app.route("/", "GET", pages.status)
    app.route("/auth/authorize", "GET", pages.authorize)
    app.route("/auth/callback", "GET", pages.callback)
    app.route("/auth/settoken", "POST", pages.set_token)
    app.route("/static/style.css", "GET", _stylesheet)
    app.route("/version", "GET", _version(ctx))
    app.route("/-/healthy", "GET", _text("OK\n"))
    app.route("/-/ready", "GET", _ready(ctx))
    if ctx.debug_handlers:
        app.route("/debug/data", "GET", _debug_data(ctx))
        app.route("/debug/token", "GET", _debug_token(ctx))
    for code in (400, 403, 404, 405, 411, 413, 500):
        app.error(code)(_error_page(ctx, templates))
    wsgi: WSGIApp = app
    return wsgi


def _host_check(ctx: WebContext, templates: Templates) -> Callable[[], None]:
    """DNS-rebinding defence: a page on another site whose name was re-pointed at this
    address reaches us with its own name in Host; it gets no page that shows data."""

    def check() -> None:
        if bottle.request.path in ANY_HOST_PATHS:
            return
        host = bottle.request.get_header("Host") or ""
        if ctx.host_policy.allows(host):
            return
        name = host_name(host) or "(none)"
        if ctx.log is not None:
            ctx.log.warning("host_refused", host=name, path=bottle.request.path)
        body = templates.refusal(Refusal(
            421, "Unknown host name",
            f"This exporter does not answer pages for the host name “{name}”, so that a web "
            "page elsewhere cannot read it through a re-pointed name (DNS rebinding). "
            "/metrics answers under any name.",
            f"If {name} is this machine's name on your network, add it to "
            f"{ctx.allowed_hosts_setting}, or open the page by its IP address."))
        raise bottle.HTTPResponse(body, status=421,
                                  headers={"Content-Type": "text/html; charset=utf-8"})

    return check


class _Pages:
    def __init__(self, ctx: WebContext, templates: Templates, states: PendingStates,
                 form_key: bytes) -> None:
        self._ctx = ctx
        self._templates = templates
        self._states = states
        self._form_key = form_key
        external = urlsplit(ctx.external_url)
        self._external_origin = f"{external.scheme}://{external.netloc}".lower()
        self._external_host = _host_with_port(external.netloc, external.scheme)
        self._secure_cookies = external.scheme == "https"

    # -- status ------------------------------------------------------------------------

    def status(self) -> str:
        ctx = self._ctx
        now = ctx.clock.now()
        token = ctx.tokens.status()
        refresh = ctx.refresher.status
        snapshot = ctx.refresher.snapshot
        advice = [a for a in (status_view.token_advice(token, ctx.scopes),
                              status_view.refresh_advice(refresh, ctx.scopes),
                              status_view.file_advice(token)) if a is not None]
        unique_advice = list({a.problem: a for a in advice}.values())
        if token.state is AuthState.OK and ctx.tokens.authorized:
            state_word, headline = "authorized", "Authorized: the exporter reads your Netatmo data."
        elif token.state is AuthState.MISSING_SCOPE:
            state_word, headline = "missing-scope", "Authorized, but without every permission."
        else:
            state_word = "not-authorized"
            headline = "Not authorized: the exporter cannot read your Netatmo data yet."
        done = bottle.request.query.get("done", "")
        return self._templates.render(
            "status",
            title="Status",
            state_word=state_word,
            headline=headline,
            done=DONE_MESSAGES.get(done, ""),
            expiry_local=(status_view.local_time(token.expires_at)
                          if token.expires_at is not None else ""),
            expiry_relative=(status_view.relative(token.expires_at, now)
                             if token.expires_at is not None else ""),
            token=token,
            refresh=refresh,
            refresh_time=(status_view.local_time(refresh.attempted_at)
                          if refresh.attempted_at is not None else ""),
            refresh_relative=(status_view.relative(refresh.attempted_at, now)
                              if refresh.attempted_at is not None else ""),
            advice=unique_advice,
            redirect_uri=self._redirect_uri(),
            external_url=self._browser_url(),
            scopes=" ".join(ctx.scopes),
            host_warning=self._host_mismatch(),
            rows=status_view.module_rows(snapshot, now, ctx.age_stale),
            schedule=status_view.schedule(ctx.refresher.settings, refresh,
                                          ctx.refresher.cadences, snapshot, now),
            fetched=(status_view.relative(snapshot.fetched_at, now)
                     if snapshot is not None else ""),
            skipped=", ".join(snapshot.skipped) if snapshot is not None else "",
            form_token=self._form_token(),
            debug_handlers=ctx.debug_handlers,
            **energy_view.page_values(ctx.energy),
        )

    # -- authorization-code flow -------------------------------------------------------

    def authorize(self) -> str:
        mismatch = self._host_mismatch()
        if mismatch and bottle.request.query.get("anyway") != "1":
            return self._templates.render(
                "interstitial", title="Check the address", request_host=mismatch,
                external_url=self._ctx.external_url, redirect_uri=self._ctx.redirect_uri)
        state = self._states.issue(self._redirect_uri())
        bottle.response.set_cookie(
            STATE_COOKIE, state, path="/auth", httponly=True, samesite="lax",
            max_age=int(self._states.lifetime), **self._secure())
        bottle.response.status = 302
        bottle.response.set_header("Location", authorize_url(
            self._ctx.api_url, self._ctx.client_id, self._redirect_uri(), self._ctx.scopes,
            state))
        return ""

    def callback(self) -> str:
        try:
            return self._callback()
        except Refusal as refusal:
            self._log("authorization_refused", reason=refusal.title)
            return self._templates.refusal(refusal)

    def _callback(self) -> str:
        query = bottle.request.query
        try:
            answer = callback_answer({name: query.get(name) or ""
                                      for name in ("code", "error", "state")})
        except ValueError as exc:
            raise Refusal(400, "Malformed answer", f"The authorization answer is malformed: "
                          f"{exc}.", "Start again from the status page.") from None
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
        self._ctx.register_secret(answer.code)
        try:
            self._ctx.tokens.authorize_with_code(answer.code, redeemed,
                                                 " ".join(self._ctx.scopes))
        except NetatmoError as exc:
            raise Refusal(502, "Netatmo refused the code", f"{exc}. Nothing changed.",
                          "If Netatmo says invalid_grant here, the redirect URI registered "
                          "for your app may differ from " + redeemed +
                          ", or the code was already used; start again.") from None
        return self._see_other("/?done=authorized")

    # -- pasted refresh token ----------------------------------------------------------

    def set_token(self) -> str:
        try:
            return self._set_token()
        except Refusal as refusal:
            self._log("refresh_token_refused", reason=refusal.title)
            return self._templates.refusal(refusal)

    def _set_token(self) -> str:
        self._check_origin()
        form = bottle.request.forms
        self._check_form_token(form.get("form_token") or "")
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
        self._ctx.register_secret(pasted)
        try:
            self._ctx.tokens.authorize_with_refresh_token(pasted)
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
        return self._see_other("/?done=token")

    def _check_origin(self) -> None:
        headers = bottle.request.headers
        origin = (headers.get("Origin") or "").strip().lower()
        if not origin or origin == "null":
            referer = urlsplit(headers.get("Referer") or "")
            origin = f"{referer.scheme}://{referer.netloc}".lower() if referer.netloc else ""
        if origin not in self._allowed_origins():
            raise Refusal(403, "Cross-site request refused",
                          "This form must be sent from the exporter's own status page. "
                          "Nothing changed.",
                          "Open the status page at " + self._ctx.external_url +
                          " and send the form from there.")

    def _allowed_origins(self) -> set[str]:
        origins = {self._external_origin}
        host = (bottle.request.get_header("Host") or "").lower()
        # Names a DNS-rebinding page could come with are refused before any page runs.
        if self._ctx.host_policy.allows(host):
            origins.add(f"{bottle.request.urlparts.scheme}://{host}")
        return origins

    def _check_form_token(self, sent: str) -> None:
        cookie = bottle.request.get_cookie(FORM_COOKIE) or ""
        expected = self._sign(cookie) if _COOKIE_SHAPE.fullmatch(cookie) else ""
        if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
            raise Refusal(403, "Form expired or forged",
                          "The form token is missing or does not match this browser. "
                          "Nothing changed.",
                          "Reload the status page and send the form again.")

    def _form_token(self) -> str:
        cookie = bottle.request.get_cookie(FORM_COOKIE) or ""
        if not _COOKIE_SHAPE.fullmatch(cookie):
            cookie = secrets.token_urlsafe(32)
            bottle.response.set_cookie(FORM_COOKIE, cookie, path="/auth", httponly=True,
                                       samesite="strict", **self._secure())
        return self._sign(cookie)

    def _sign(self, cookie: str) -> str:
        return hmac.new(self._form_key, cookie.encode(), "sha256").hexdigest()

    # -- helpers -------------------------------------------------------------------------

    def _host_mismatch(self) -> str:
        """The Host this request came to, if it is not the configured external URL's."""
        host = (bottle.request.get_header("Host") or "").lower()
        if not self._ctx.external_url_configured or not host or _host_with_port(
                host, bottle.request.urlparts.scheme) == self._external_host:
            return ""
        return host

    def _browser_url(self) -> str:
        """The configured external URL, else the address this browser used."""
        host = (bottle.request.get_header("Host") or "").lower()
        if self._ctx.external_url_configured or not host:
            return self._ctx.external_url
        return f"{bottle.request.urlparts.scheme}://{host}"

    def _redirect_uri(self) -> str:
        return self._browser_url() + "/auth/callback"

    def _secure(self) -> dict[str, bool]:
        return {"secure": True} if self._secure_cookies else {}

    def _see_other(self, location: str) -> str:
        bottle.response.status = 303
        bottle.response.set_header("Location", location)
        return ""

    def _log(self, event: str, **fields: Any) -> None:
        if self._ctx.log is not None:
            self._ctx.log.warning(event, path=bottle.request.path, **fields)


def _host_with_port(netloc: str, scheme: str) -> str:
    netloc = netloc.lower().rpartition("@")[2]
    if netloc.endswith("]") or ":" not in netloc:
        return f"{netloc}:{443 if scheme == 'https' else 80}"
    return netloc


def _stylesheet() -> Any:
    return bottle.static_file("style.css", root=str(STATIC), mimetype="text/css")


def _error_page(ctx: WebContext, templates: Templates) -> Callable[[bottle.HTTPError], str]:
    titles = {400: "Bad request", 403: "Forbidden", 404: "Not found",
              405: "Method not allowed", 411: "Length required", 413: "Request too large",
              500: "Internal error"}

    def page(error: bottle.HTTPError) -> str:
        status = int(error.status_code)
        if status >= 500 and ctx.log is not None:
            ctx.log.error("web_error", path=bottle.request.path,
                          error=type(error.exception).__name__ if error.exception else "")
        message = {
            404: "There is no page at this address.",
            405: "This address does not accept this kind of request.",
            413: "The request body is too large.",
            500: "The exporter failed to answer this request; the log has the details.",
        }.get(status, "The request could not be understood.")
        return templates.render("message", title=titles.get(status, "Error"),
                                message=message, fix="", kind="error")

    return page


def _version(ctx: WebContext) -> Callable[[], str]:
    def version() -> str:
        bottle.response.content_type = "application/json"
        return json.dumps({"version": ctx.version, "commit": ctx.commit})

    return version


def _text(body: str) -> Callable[[], str]:
    def answer() -> str:
        bottle.response.content_type = "text/plain; charset=utf-8"
        return body

    return answer


def _ready(ctx: WebContext) -> Callable[[], str]:
    def ready() -> str:
        bottle.response.content_type = "text/plain; charset=utf-8"
        if ctx.refresher.snapshot is None:
            bottle.response.status = 503
            return "not ready: no data from Netatmo yet\n"
        return "OK\n"

    return ready


def _debug_data(ctx: WebContext) -> Callable[[], str]:
    """The cached snapshot as the refresher left it; never calls Netatmo."""

    def data() -> str:
        bottle.response.content_type = "application/json"
        snapshot = ctx.refresher.snapshot
        return json.dumps({
            "snapshot": None if snapshot is None else dataclasses.asdict(snapshot),
            "refresh": dataclasses.asdict(ctx.refresher.status),
        }, indent=1, ensure_ascii=False)

    return data


def _debug_token(ctx: WebContext) -> Callable[[], str]:
    """Facts about the token (validity, expiry, which parts exist); never its values."""

    def token() -> str:
        bottle.response.content_type = "application/json"
        status = ctx.tokens.status()
        facts = dataclasses.asdict(status)
        facts["state"] = status.state.value
        facts["authorized"] = ctx.tokens.authorized
        if status.expires_at is not None:
            facts["expires_in_seconds"] = round(status.expires_at - ctx.clock.now(), 1)
        return json.dumps(facts, indent=1)

    return token
