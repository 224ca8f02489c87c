"""The pages' templates, the refusal page that says why a request was turned down, and the
error pages bottle answers with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import bottle

from netatmo_exporter.adapters.system.logging import raised_at
from netatmo_exporter.domain.ports import EventLog

VIEWS = Path(__file__).with_name("views")
ERROR_STATUSES = (400, 403, 404, 405, 411, 413, 500)
_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           411: "Length required", 413: "Request too large", 500: "Internal error"}
_MESSAGES = {
    404: "There is no page at this address.",
    405: "This address does not accept this kind of request.",
    413: "The request body is too large.",
    500: "The exporter failed to answer this request; the log has the details.",
}


class Refusal(Exception):
    """A request the exporter turns down with a page that says why; nothing changed."""

    def __init__(self, status: int, title: str, message: str, fix: str = "",
                 link: tuple[str, str] | None = ("/", "Back to the status page")) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message
        self.fix = fix
        self.link = link  # (address, text) of the page's one button, or none


class Templates:
    """bottle's SimpleTemplate over views/, each template compiled once."""

    def __init__(self, version: str) -> None:
        self._version = version
        self._cache: dict[str, Any] = {}

    def render(self, name: str, **values: Any) -> str:
        template = self._cache.get(name)
        if template is None:
            template = bottle.SimpleTemplate(name=name, lookup=[str(VIEWS)])
            self._cache[name] = template
        bottle.response.content_type = "text/html; charset=utf-8"
        return str(template.render(version=self._version, **values))

    def refusal(self, refusal: Refusal) -> str:
        bottle.response.status = refusal.status
        return self.render("message", title=refusal.title, message=refusal.message,
                           fix=refusal.fix, kind="refusal", link=refusal.link)

    def error_page(self, log: EventLog | None) -> Callable[[bottle.HTTPError], str]:
        """bottle's own errors (no route, wrong method, a failing handler) as a page that
        echoes nothing of the request; a failure is logged by its exception's type."""

        def page(error: bottle.HTTPError) -> str:
            status = int(error.status_code)
            if status >= 500 and log is not None:
                failure = error.exception
                log.error("web_error", path=bottle.request.path,
                          error=type(failure).__name__ if failure else "",
                          at=raised_at(failure) if isinstance(failure, BaseException) else "")
            return self.render("message", title=_TITLES.get(status, "Error"),
                               message=_MESSAGES.get(status, "The request could not be "
                                                             "understood."),
                               fix="", kind="error", link=("/", "Back to the status page"))

        return page
