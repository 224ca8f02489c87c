"""OAuth tokens and the rules that decide when one must be refreshed."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

DEFAULT_LIFETIME = 10800.0
MAX_REFRESH_MARGIN = 300.0


@dataclass(frozen=True, slots=True)
class Token:
    """What Netatmo gave us. `repr` never shows the secrets, so a stray log line can't leak one."""

    access_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    expiry: datetime | None = None
    token_type: str = "Bearer"  # noqa: S105 - a type name, not a secret
    lifetime: float | None = None
    scope: tuple[str, ...] | None = None

    @classmethod
    def from_grant(
        cls,
        access_token: str,
        refresh_token: str,
        expires_in: float,
        now: float,
        scope: tuple[str, ...] | None = None,
    ) -> Token:
        expiry = datetime.fromtimestamp(now, UTC) + timedelta(seconds=expires_in)
        return cls(access_token, refresh_token, expiry, "Bearer", expires_in, scope)

    @property
    def has_access_token(self) -> bool:
        return bool(self.access_token)

    @property
    def has_refresh_token(self) -> bool:
        return bool(self.refresh_token)

    def expires_at(self) -> float | None:
        return None if self.expiry is None else self.expiry.timestamp()

    def without_access_token(self) -> Token:
        return replace(self, access_token="", expiry=None)


class TokenAction(enum.Enum):
    USE = "use"
    REFRESH = "refresh"
    AUTHORIZE = "authorize"


def refresh_margin(token: Token) -> float:
    """Refresh this long before expiry: a tenth of the lifetime, at most five minutes."""
    lifetime = token.lifetime if token.lifetime and token.lifetime > 0 else DEFAULT_LIFETIME
    return min(MAX_REFRESH_MARGIN, lifetime / 10.0)


def token_action(token: Token | None, now: float) -> TokenAction:
    """What to do before the next API call with this token.

    A refresh token outlives its access token, so an expired or missing access token, or
    a missing expiry, calls for a refresh rather than a new authorization.
    """
    if token is None or not (token.has_refresh_token or token.has_access_token):
        return TokenAction.AUTHORIZE
    expires_at = token.expires_at()
    usable = (
        token.has_access_token
        and expires_at is not None
        and now < expires_at - refresh_margin(token)
    )
    if usable:
        return TokenAction.USE
    if token.has_refresh_token:
        return TokenAction.REFRESH
    if token.has_access_token and expires_at is not None and now < expires_at:
        return TokenAction.USE
    return TokenAction.AUTHORIZE


def access_token_valid(token: Token | None, now: float) -> bool:
    if token is None or not token.has_access_token:
        return False
    expires_at = token.expires_at()
    return expires_at is not None and now < expires_at
