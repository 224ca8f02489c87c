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
    authorized_at: datetime | None = None
    """When the user gave the authorization this token descends from (the web page, a
    pasted refresh token, `login`); None for a token written by a program that does not
    record it (the Go exporter, a version before 2026-12)."""
    renewals: int = 0
    """How many renewals separate this token from that authorization."""

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

    def authorized(self, now: float) -> Token:
        """This token as a new authorization, given at `now`."""
        return replace(self, authorized_at=datetime.fromtimestamp(now, UTC), renewals=0)

    def renewed_as(self, renewal: Token) -> Token:
        """`renewal` (Netatmo's answer to this token's refresh) in this token's lineage."""
        return replace(renewal, authorized_at=self.authorized_at, renewals=self.renewals + 1,
                       scope=self.scope if renewal.scope is None else renewal.scope)


def supersedes(theirs: Token, ours: Token | None) -> bool:
    """Whether `theirs`, which another writer put in the token file since we last read or
    wrote it, replaces `ours`: the rule of every write of the token file (see
    `domain/authorization/tokens.py`).

    The same refresh token is no news. Between two tokens that both record their
    authorization, the newer authorization wins, and within one authorization the later
    renewal. A token that does not record one was written by a program that follows no
    rule of ours (the Go exporter, a copied file, `cp` by hand) after we last looked: the
    person who put it there meant it to be used."""
    if ours is None:
        return True
    if theirs.refresh_token or ours.refresh_token:
        if theirs.refresh_token == ours.refresh_token:
            return False
    elif theirs.access_token == ours.access_token:
        return False
    if theirs.authorized_at is None or ours.authorized_at is None:
        return True
    return (theirs.authorized_at, theirs.renewals) > (ours.authorized_at, ours.renewals)


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
