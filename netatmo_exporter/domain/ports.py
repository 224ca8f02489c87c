"""What the domain needs from the outside world. Adapters satisfy these structurally."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.energy.model import HomeSetup, HomeStatus
from netatmo_exporter.domain.weather.model import Station


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


Wait = Callable[[threading.Event, float], object]
"""Sleeps until the event is set or the timeout (seconds of the injected clock) passed:
`threading.Event.wait` in production, a fake clock's jump in tests and the benchmark."""


class AccessTokens(Protocol):
    """Where a caller of Netatmo's data API gets its access token: `TokenManager` in the
    service, a control-socket client in a separate command (the history backfill).

    `access_token` returns a usable token, renewing it first when due, or raises
    `NotAuthorized`, `InvalidGrant`, `InvalidClient` or a transient `NetatmoError`.
    `reject_access_token` says Netatmo refused that token (codes 2 and 3): the next
    `access_token` must not return it again."""

    def access_token(self) -> str: ...

    def reject_access_token(self, access_token: str) -> None: ...


class Authorizations(Protocol):
    """What the authorization pages do with the token (`TokenManager`): spend an OAuth
    code or a pasted refresh token for a new authorization."""

    def authorize_with_code(self, code: str, redirect_uri: str, scope: str) -> None: ...

    def authorize_with_refresh_token(self, refresh_token: str) -> None: ...


class ScopeGrants(Protocol):
    """What a poller may learn and say about the token's scopes (`TokenManager`)."""

    def granted_scope(self) -> tuple[str, ...] | None:
        """The scopes Netatmo granted; None when the token does not say."""
        ...

    def mark_missing_scope(self) -> None:
        """An endpoint refused the token for want of scope: the user must authorize again."""
        ...


class TokenEndpoint(Protocol):
    """Netatmo's `/oauth2/token`. Raises `InvalidGrant`, `InvalidClient` or `TransientError`."""

    def exchange_code(self, code: str, redirect_uri: str, scope: str) -> Token: ...

    def refresh(self, refresh_token: str) -> Token: ...


class WeatherSource(Protocol):
    """Netatmo's data endpoints. Raises `AccessTokenRejected`, `MissingScope`, `RateLimited`,
    `TransientError` or `BadResponse`; never puts the token anywhere but a header. With
    `device_id`, the answer holds that one device only."""

    def fetch_stations(self, access_token: str, favorites: bool,
                       device_id: str | None = None) -> tuple[Station, ...]: ...

    def fetch_homecoaches(self, access_token: str,
                          device_id: str | None = None) -> tuple[Station, ...]: ...


class EnergySource(Protocol):
    """Netatmo's Energy endpoints (scope `read_thermostat`); raises as `WeatherSource`.
    `fetch_home_status` raises `HomeUnavailable` when Netatmo lists only errors for the
    home."""

    def fetch_homes(self, access_token: str) -> tuple[HomeSetup, ...]: ...

    def fetch_home_status(self, access_token: str, home_id: str) -> HomeStatus: ...


class TokenStore(Protocol):
    """Durable home of the token. `save` is atomic: afterwards the old or the new token is
    on disk, never a mix. `load` returns None when nothing was stored yet and raises
    `CorruptTokenFile` (after moving the bad file aside) when the content is unusable."""

    @property
    def location(self) -> str: ...

    def load(self) -> Token | None: ...

    def load_if_replaced(self) -> Token | None:
        """A token someone else wrote to the store since it was last read or written (a
        headless login, a copied file); None when unchanged. Never raises."""
        ...

    def holds_last_seen(self) -> bool:
        """Whether the store still holds what it last read or wrote (not replaced, not
        removed)."""
        ...

    def save(self, token: Token) -> None: ...

    def renewal_lock(self, wait: float = ...) -> AbstractContextManager[object]:
        """Held, across processes, by every write of the store and around "adopt a replaced
        store, renew if still due, save" (the rule in `domain/authorization/tokens.py`): a
        backfill and the service renewing from one token file would otherwise both spend
        the refresh token Netatmo rotates, and lose the authorization. Raises
        `TransientError` when another holder keeps it longer than `wait` seconds."""
        ...


class EventLog(Protocol):
    """Structured log; structlog's bound loggers satisfy it."""

    def debug(self, event: str, **kw: Any) -> Any: ...

    def info(self, event: str, **kw: Any) -> Any: ...

    def warning(self, event: str, **kw: Any) -> Any: ...

    def error(self, event: str, **kw: Any) -> Any: ...
