"""Where the browser reaches the exporter: the configured external URL, or the address
the browser used; the origins a form may come from; whether cookies are `Secure`."""

from __future__ import annotations

from urllib.parse import urlsplit

import bottle

from netatmo_exporter.adapters.web.host_policy import HostPolicy
from netatmo_exporter.adapters.web.http_policy import Origin, parse_host, parse_origin


class SiteAddress:
    """Without a configured external URL, redirects go back to the address the browser
    used (a Host the host policy accepts), as a LAN user would expect."""

    def __init__(self, external_url: str, configured: bool, host_policy: HostPolicy) -> None:
        self.external_url = external_url
        self._configured = configured
        self._host_policy = host_policy
        self._external = parse_origin(external_url)
        self._secure_cookies = urlsplit(external_url).scheme == "https"

    def host_mismatch(self) -> str:
        """The Host this request came to, if it is not the configured external URL's."""
        request = self._request_origin()
        if not self._configured or request is None or (
                self._external is not None and request.same_authority(self._external)):
            return ""
        return request.host.netloc

    def browser_url(self) -> str:
        """The configured external URL, else the address this browser used."""
        request = self._request_origin()
        if self._configured or request is None:
            return self.external_url
        return f"{request.scheme}://{request.host.netloc}"

    def redirect_uri(self) -> str:
        return self.browser_url() + "/auth/callback"

    def configured_redirect_uri(self) -> str:
        return self.external_url.rstrip("/") + "/auth/callback"

    def cookie_options(self) -> dict[str, bool]:
        """`Secure` cookies when the external URL is https."""
        return {"secure": True} if self._secure_cookies else {}

    def form_origin_allowed(self) -> bool:
        """The form was sent from one of our own pages: its Origin (or, without one, its
        Referer) is the external URL's, or the address this request came to."""
        headers = bottle.request.headers
        origin = (headers.get("Origin") or "").strip()
        sender = parse_origin(origin if origin and origin.lower() != "null"
                              else headers.get("Referer") or "")
        if sender is None:
            return False
        if self._external is not None and sender.same_as(self._external):
            return True
        request = self._request_origin()
        # Names a DNS-rebinding page could come with are refused before any page runs.
        return (request is not None and self._host_policy.allows(request.host.netloc)
                and sender.same_as(request))

    def _request_origin(self) -> Origin | None:
        host = parse_host(bottle.request.get_header("Host") or "")
        if host is None:
            return None
        return Origin(bottle.request.urlparts.scheme.lower(), host)
