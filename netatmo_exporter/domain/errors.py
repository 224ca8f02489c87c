"""What can go wrong talking to Netatmo, in words an operator can act on."""

from __future__ import annotations


class NetatmoError(Exception):
    """Base of every failure the exporter reports; `reason` is a short metric-friendly word."""

    reason = "error"
    transient = False


class TransientError(NetatmoError):
    """Timeouts, connection errors, 5xx and proxy error pages: retried, never discard a token."""

    transient = True

    def __init__(self, message: str, reason: str = "transient") -> None:
        super().__init__(message)
        self.reason = reason


class InvalidGrant(NetatmoError):
    reason = "invalid_grant"

    def __init__(self) -> None:
        super().__init__(
            "Netatmo refused the refresh token or code (invalid_grant): authorize again; "
            "if it keeps happening, remove stale partner apps in your Netatmo account"
        )


class InvalidClient(NetatmoError):
    reason = "invalid_client"

    def __init__(self) -> None:
        super().__init__(
            "Netatmo refused the client credentials (invalid_client): "
            "check --client-id and --client-secret"
        )


class InvalidRequest(NetatmoError):
    reason = "invalid_request"


class AccessTokenRejected(NetatmoError):
    """API codes 2 and 3: the access token is invalid or expired; a refresh fixes it."""

    reason = "access_token_rejected"


class MissingScope(NetatmoError):
    reason = "missing_scope"

    def __init__(self, endpoint: str) -> None:
        super().__init__(
            f"the authorization does not include the scope needed for {endpoint} (code 13): "
            "authorize again with the scope, or drop it from --scope"
        )
        self.endpoint = endpoint


class RateLimited(NetatmoError):
    """API codes 26 (user usage reached) and 11 (concurrency limit), HTTP 429."""

    reason = "rate_limited"
    transient = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PollCrashed(NetatmoError):
    """A poll ended in an error of the exporter's own (a bug): reported like a failed call,
    the loop tried again later, never left dead with its last data on /metrics."""

    reason = "internal_error"

    def __init__(self, exc: Exception) -> None:
        super().__init__(f"internal error {type(exc).__name__}: {str(exc)[:200]}")


class BadResponse(NetatmoError):
    """An answer that is not what the API promises (malformed JSON, a number no reading can
    have, too large, too slow). Not retried at once: asked again, the same server would most
    likely send the same; the pollers try again at their next turn."""

    reason = "bad_response"

    def __init__(self, message: str, reason: str = "bad_response") -> None:
        super().__init__(message)
        self.reason = reason


class ApiError(NetatmoError):
    """An error code the exporter cannot fix by retrying (device not found, bad request)."""

    reason = "api_error"


class NotAuthorized(NetatmoError):
    reason = "not_authorized"

    def __init__(self) -> None:
        super().__init__("not authorized yet: open the status page and authorize the exporter")


class TokenFileError(Exception):
    """The token file could not be read or written; the message names the file and the cause."""


class CorruptTokenFile(TokenFileError):
    def __init__(self, message: str, moved_to: str | None) -> None:
        super().__init__(message)
        self.moved_to = moved_to
