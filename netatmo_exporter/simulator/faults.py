"""Failures the simulated cloud can be told to produce instead of a normal answer.

A :class:`Fault` is queued for an endpoint with ``FakeNetatmoCloud.inject``; the next
calls of that endpoint meet it before any protocol logic runs (a faulted token call
consumes no refresh token), except :meth:`Fault.lost_response`, which processes the
call fully and then drops the answer.

Every fault may carry ``wait`` seconds of waiting before it acts (keyword ``wait=`` of
every constructor); ``Fault.delay(seconds)`` is a normal answer after a wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    DELAY = "delay"
    """Answer normally, after ``wait`` seconds."""
    JSON_ERROR = "json_error"
    """Answer ``status`` with the Netatmo error document ``{"error": {code, message}}``."""
    OAUTH_ERROR = "oauth_error"
    """Answer ``status`` with an OAuth error document ``{"error": message}``."""
    HTML_ERROR = "html_error"
    """Answer ``status`` with an HTML page, as a reverse proxy in front of the API does."""
    MALFORMED_JSON = "malformed_json"
    """Answer 200 with a complete body that is not valid JSON."""
    TRUNCATED_BODY = "truncated_body"
    """Announce a full JSON body in Content-Length, send half of it, then close."""
    CONNECTION_RESET = "connection_reset"
    """Read the request, then reset the TCP connection without answering."""
    LOST_RESPONSE = "lost_response"
    """Process the request for real (a refresh rotates the token), then reset the
    connection: the client never learns the outcome."""
    RAW_ANSWER = "raw_answer"
    """Answer ``status`` with ``body`` as given: a hostile or broken server's bytes."""
    HUGE_ANSWER = "huge_answer"
    """Answer 200 with a JSON document of ``size`` bytes, without Content-Length (the end
    of the connection ends it), written as it is made: a client must count as it reads."""
    DRIP = "drip"
    """Answer normally, one byte every ``wait`` seconds, the status line and headers too."""


@dataclass(frozen=True)
class Fault:
    """One failure; build it with the class methods."""

    kind: FaultKind
    status: int = 200
    code: int | None = None
    message: str = ""
    wait: float = 0.0
    body: bytes = b""
    size: int = 0

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """A normal answer that takes ``seconds`` to arrive."""
        return cls(FaultKind.DELAY, wait=seconds)

    @classmethod
    def api_error(cls, status: int, code: int, message: str, *, wait: float = 0.0) -> Fault:
        """A Netatmo API error, ``{"error": {"code": code, "message": message}}``."""
        return cls(FaultKind.JSON_ERROR, status=status, code=code, message=message, wait=wait)

    @classmethod
    def oauth_error(cls, error: str, *, status: int = 400, wait: float = 0.0) -> Fault:
        """An OAuth error such as ``invalid_grant``, without touching the token state."""
        return cls(FaultKind.OAUTH_ERROR, status=status, message=error, wait=wait)

    @classmethod
    def http_error(cls, status: int = 500, *, wait: float = 0.0) -> Fault:
        """A server error with a JSON body (code 1, "Internal Server Error" style)."""
        return cls(FaultKind.JSON_ERROR, status=status, code=1, message="Internal error", wait=wait)

    @classmethod
    def http_500(cls, *, wait: float = 0.0) -> Fault:
        return cls.http_error(500, wait=wait)

    @classmethod
    def html_error(cls, status: int = 502, *, wait: float = 0.0) -> Fault:
        """An HTML error page (``text/html``), as nginx sends when the backend is down."""
        return cls(FaultKind.HTML_ERROR, status=status, wait=wait)

    @classmethod
    def html_502(cls, *, wait: float = 0.0) -> Fault:
        return cls.html_error(502, wait=wait)

    @classmethod
    def html_503(cls, *, wait: float = 0.0) -> Fault:
        return cls.html_error(503, wait=wait)

    @classmethod
    def malformed_json(cls, *, wait: float = 0.0) -> Fault:
        return cls(FaultKind.MALFORMED_JSON, wait=wait)

    @classmethod
    def truncated_body(cls, *, wait: float = 0.0) -> Fault:
        return cls(FaultKind.TRUNCATED_BODY, wait=wait)

    @classmethod
    def connection_reset(cls, *, wait: float = 0.0) -> Fault:
        return cls(FaultKind.CONNECTION_RESET, wait=wait)

    @classmethod
    def lost_response(cls, *, wait: float = 0.0) -> Fault:
        return cls(FaultKind.LOST_RESPONSE, wait=wait)

    @classmethod
    def raw_answer(cls, body: bytes, *, status: int = 200, wait: float = 0.0) -> Fault:
        return cls(FaultKind.RAW_ANSWER, status=status, body=body, wait=wait)

    @classmethod
    def huge_answer(cls, size: int) -> Fault:
        return cls(FaultKind.HUGE_ANSWER, size=size)

    @classmethod
    def drip(cls, every: float) -> Fault:
        """The normal answer, one byte every ``every`` seconds."""
        return cls(FaultKind.DRIP, wait=every)

    @classmethod
    def rate_limited(cls, status: int = 403, *, wait: float = 0.0) -> Fault:
        """Netatmo's "User usage reached" (code 26), sent as 403 or 429."""
        return cls.api_error(status, 26, "User usage reached", wait=wait)

    @classmethod
    def concurrency_limited(cls, *, wait: float = 0.0) -> Fault:
        """Netatmo's concurrency limit (HTTP 429, code 11)."""
        return cls.api_error(429, 11, "Too many concurrent requests", wait=wait)

    @classmethod
    def device_not_found(cls, *, wait: float = 0.0) -> Fault:
        return cls.api_error(403, 9, "Device not found", wait=wait)
