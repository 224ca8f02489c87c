"""The refresh-token form's guard against cross-site requests: a per-browser form token
(an HMAC, under a per-process key, of a random cookie the browser keeps) that the status
page puts in the form and the form must send back, and the sender's origin."""

from __future__ import annotations

import hmac
import re
import secrets

import bottle

from netatmo_exporter.adapters.pages.templates import Refusal
from netatmo_exporter.adapters.web.site_address import SiteAddress

FORM_COOKIE = "netatmo_exporter_form"
_COOKIE_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,100}")


class FormGuard:
    def __init__(self, address: SiteAddress) -> None:
        self._address = address
        self._key = secrets.token_bytes(32)

    def issue(self) -> str:
        """The form token for this browser; sets its cookie on the first visit."""
        cookie = bottle.request.get_cookie(FORM_COOKIE) or ""
        if not _COOKIE_SHAPE.fullmatch(cookie):
            cookie = secrets.token_urlsafe(32)
            bottle.response.set_cookie(FORM_COOKIE, cookie, path="/auth", httponly=True,
                                       samesite="strict", **self._address.cookie_options())
        return self._sign(cookie)

    def check(self, sent: str) -> None:
        """Raises Refusal unless the form came from our page, in this browser."""
        if not self._address.form_origin_allowed():
            raise Refusal(403, "Cross-site request refused",
                          "This form must be sent from the exporter's own status page. "
                          "Nothing changed.",
                          "Open the status page at " + self._address.external_url +
                          " and send the form from there.")
        cookie = bottle.request.get_cookie(FORM_COOKIE) or ""
        expected = self._sign(cookie) if _COOKIE_SHAPE.fullmatch(cookie) else ""
        if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
            raise Refusal(403, "Form expired or forged",
                          "The form token is missing or does not match this browser. "
                          "Nothing changed.",
                          "Reload the status page and send the form again.")

    def _sign(self, cookie: str) -> str:
        return hmac.new(self._key, cookie.encode(), "sha256").hexdigest()
