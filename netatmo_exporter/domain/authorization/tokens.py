"""The one owner of the token: single-flight refresh, persisted before use.

The rule of every write of the token file, in every process (the service's renewals, its
flush at ExecStop and SIGTERM, the web page's authorization and pasted refresh token,
`netatmo-exporter login`, a backfill renewing from the file):

1. The writer holds the token file's lock (`TokenStore.renewal_lock`, `<token file>.lock`),
   a renewal from before it spends the refresh token until its answer is on disk.
2. Under the lock it reads the file again: a token another writer put there since this
   one last looked that `supersedes` its own (`domain/authorization/token.py`: the newer
   authorization wins, then the later renewal of it) is adopted, and nothing is written.
3. A token the file already holds is not written again: a flush writes only a token whose
   save failed before, or whose file was removed, so other processes never see an
   unchanged token as news.

Tokens record their authorization (`Token.authorized_at`, `Token.renewals`, extra fields
of the Go exporter's file format, which Go ignores), so that a renewal of an older grant
never replaces a newer authorization however the writes interleave.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass

from netatmo_exporter.domain.authorization.token import (
    Token,
    TokenAction,
    access_token_valid,
    refresh_margin,
    supersedes,
    token_action,
)
from netatmo_exporter.domain.errors import (
    CorruptTokenFile,
    InvalidClient,
    InvalidGrant,
    NetatmoError,
    NotAuthorized,
    TokenFileError,
    TransientError,
)
from netatmo_exporter.domain.ports import Clock, EventLog, TokenEndpoint, TokenStore

FLUSH_WAIT = 1.0
"""How long a flush waits for a renewal in flight in this process (which writes its own
token) or for another process's hold on the token file, before answering."""


class AuthState(enum.Enum):
    OK = "ok"
    NEEDS_AUTHORIZATION = "needs_authorization"
    INVALID_GRANT = "invalid_grant"
    INVALID_CLIENT = "invalid_client"
    MISSING_SCOPE = "missing_scope"


@dataclass(frozen=True, slots=True)
class TokenStatus:
    """What may be shown about the token: facts, never values."""

    state: AuthState
    authorized: bool
    """A token the pollers can use or renew: no authorization is needed."""
    valid: bool
    expires_at: float | None
    has_access_token: bool
    has_refresh_token: bool
    scope: tuple[str, ...] | None
    token_file: str
    token_file_problem: str | None
    unsaved: bool


class TokenManager:
    """Holds the current token. Every refresh happens under one lock, so concurrent callers
    wait for a single refresh instead of each spending (and killing) the refresh token."""

    def __init__(
        self,
        endpoint: TokenEndpoint,
        store: TokenStore,
        clock: Clock,
        log: EventLog,
        on_new_token: Callable[[], None] = lambda: None,
    ) -> None:
        self._endpoint = endpoint
        self._store = store
        self._clock = clock
        self._log = log
        self._on_new_token = on_new_token
        # _refresh_lock makes refreshes single-flight and may be held across a network call;
        # _lock guards the state for a moment only, so pages and scrapes never wait on Netatmo.
        self._refresh_lock = threading.Lock()
        self._lock = threading.RLock()
        self._token: Token | None = None
        self._state = AuthState.NEEDS_AUTHORIZATION
        self._file_problem: str | None = None
        self._unsaved = False
        self.generation = 0

    def load(self) -> None:
        with self._lock:
            try:
                token = self._store.load()
            except CorruptTokenFile as exc:
                self._file_problem = str(exc)
                self._log.error("token_file_corrupt", problem=str(exc), moved_to=exc.moved_to)
                token = None
            except TokenFileError as exc:
                self._file_problem = str(exc)
                self._log.error("token_file_unreadable", problem=str(exc))
                token = None
            self._token = token
            self._state = AuthState.OK if token is not None else AuthState.NEEDS_AUTHORIZATION
            self._bump()
            self._log.info(
                "token_loaded" if token else "token_absent",
                token_file=self._store.location,
                action=token_action(token, self._clock.now()).value,
            )

    def set_on_new_token(self, callback: Callable[[], None]) -> None:
        self._on_new_token = callback

    @property
    def authorized(self) -> bool:
        with self._lock:
            return token_action(self._token, self._clock.now()) is not TokenAction.AUTHORIZE

    def granted_scope(self) -> tuple[str, ...] | None:
        with self._lock:
            return None if self._token is None else self._token.scope

    def refresh_due_in(self, now: float) -> float | None:
        """Seconds until the token should be refreshed (<= 0: now); None without one."""
        with self._lock:
            token = self._token
        if token is None or not token.has_refresh_token:
            return None
        expires_at = token.expires_at()
        if expires_at is None or not token.has_access_token:
            return 0.0
        return expires_at - refresh_margin(token) - now

    def access_token(self) -> str:
        """A usable access token, refreshing first when due. Raises `NotAuthorized`,
        `InvalidGrant`, `InvalidClient` or a transient error (the token is then kept)."""
        with self._refresh_lock:
            current, due = self._adopted_token()
            if due:
                current = self._refresh_alone()
            return current.access_token

    def _adopted_token(self) -> tuple[Token, bool]:
        """The token after adopting a replaced file, and whether it is due for renewal."""
        self._adopt_replaced_file()
        with self._lock:
            current = self._token
        action = token_action(current, self._clock.now())
        if action is TokenAction.AUTHORIZE or current is None:
            raise NotAuthorized()
        return current, action is TokenAction.REFRESH

    def _refresh_alone(self) -> Token:
        """Renews under the store's lock, shared with the other processes that use this
        token file: one that renewed while we waited for the lock wrote its token there,
        which is adopted instead of spending the refresh token it already spent."""
        with self._store.renewal_lock():
            current, due = self._adopted_token()
            return self._refresh(current) if due else current

    def reject_access_token(self, access_token: str) -> None:
        """The API called this access token invalid or expired: refresh next time, unless
        another caller already replaced it."""
        with self._lock:
            if self._token is not None and self._token.access_token == access_token:
                self._token = self._token.without_access_token()
                self._bump()

    def authorize_with_code(self, code: str, redirect_uri: str, scope: str) -> None:
        token = self._endpoint.exchange_code(code, redirect_uri, scope)
        self._authorize(token, "authorized")

    def authorize_with_refresh_token(self, refresh_token: str) -> None:
        """Spend a pasted refresh token once; the current token stays if Netatmo refuses it."""
        token = self._endpoint.refresh(refresh_token)
        self._authorize(token, "refresh_token_accepted")

    def flush(self, wait: float = FLUSH_WAIT) -> str:
        """Make sure the token file holds our token, or a newer one; returns where. Raises
        `TokenFileError`. Writes only when the file lacks it: a save failed before, or the
        file was removed (the rule above).

        A renewal in flight writes its rotated token itself, under the file's lock: the
        flush waits for it at most `wait` seconds, then answers for the token on disk."""
        if not self._refresh_lock.acquire(timeout=wait):
            with self._lock:
                unsaved = self._unsaved
            if unsaved:
                raise TokenFileError(f"token file {self._store.location}: not written yet, "
                                     "a renewal in flight holds it")
            self._log.info("token_flushed", token_file=self._store.location, written=False,
                           renewal_in_flight=True)
            return self._store.location
        try:
            self._adopt_replaced_file()
            written = self._on_disk_missing() and self._write_ours(wait)
            self._log.info("token_flushed", token_file=self._store.location, written=written)
            return self._store.location
        finally:
            self._refresh_lock.release()

    def _on_disk_missing(self) -> bool:
        with self._lock:
            if self._token is None:
                return False
            return self._unsaved or not self._store.holds_last_seen()

    def _write_ours(self, wait: float) -> bool:
        """Called with `_refresh_lock` held: writes our token under the file's lock unless a
        newer one is there. Raises `TokenFileError`."""
        try:
            with self._store.renewal_lock(wait):
                self._adopt_replaced_file()
                with self._lock:
                    if self._token is None or not self._on_disk_missing():
                        return False
                    self._store.save(self._token)
                    self._unsaved = False
                    self._file_problem = None
                    return True
        except TransientError as exc:
            raise TokenFileError(f"{exc}; the token is not on disk yet") from None

    def status(self) -> TokenStatus:
        with self._lock:
            token = self._token
            now = self._clock.now()
            return TokenStatus(
                state=self._state,
                authorized=token_action(token, now) is not TokenAction.AUTHORIZE,
                valid=access_token_valid(token, now),
                expires_at=None if token is None else token.expires_at(),
                has_access_token=token is not None and token.has_access_token,
                has_refresh_token=token is not None and token.has_refresh_token,
                scope=None if token is None else token.scope,
                token_file=self._store.location,
                token_file_problem=self._file_problem,
                unsaved=self._unsaved,
            )

    def mark_missing_scope(self) -> None:
        with self._lock:
            if self._state is AuthState.OK:
                self._state = AuthState.MISSING_SCOPE
                self._bump()

    def reload_if_replaced(self) -> None:
        """Adopt a token another program wrote to the token file (e.g. `login`)."""
        if self._refresh_lock.acquire(blocking=False):
            try:
                self._adopt_replaced_file()
            finally:
                self._refresh_lock.release()

    def _adopt_replaced_file(self) -> None:
        """Called with `_refresh_lock` held: a token another writer put in the file since
        we last looked is adopted if it supersedes ours; an older one is not, and ours is
        written over it at the next flush."""
        theirs = self._store.load_if_replaced()
        if theirs is None:
            return
        with self._lock:
            ours = self._token
            if not supersedes(theirs, ours):
                if ours is not None and theirs.refresh_token != ours.refresh_token:
                    self._unsaved = True
                    self._log.warning("token_file_older_ignored", token_file=self._store.location,
                                      action="kept our newer authorization")
                return
        self._take(theirs, "token_file_replaced", "adopted the token another program wrote")

    def _take(self, token: Token, event: str, action: str) -> None:
        """Adopt `token`, which the file holds."""
        with self._lock:
            self._token = token
            self._state = AuthState.OK
            self._file_problem = None
            self._unsaved = False
            self._bump()
        self._log.warning(event, token_file=self._store.location, action=action)
        self._on_new_token()

    def _authorize(self, token: Token, event: str) -> None:
        """A new authorization: the newest there is, unless a newer one reached the file
        while we waited for its lock."""
        token = token.authorized(self._clock.now())
        with self._refresh_lock, self._store.renewal_lock():
            theirs = self._store.load_if_replaced()
            if theirs is not None and supersedes(theirs, token):
                self._take(theirs, "authorization_superseded",
                           "kept the newer authorization another program wrote meanwhile")
                return
            with self._lock:
                self._persist(token)
                self._token = token
                self._state = AuthState.OK
                self._bump()
                self._log.info(event, token_file=self._store.location,
                               scope=" ".join(token.scope or ()))
        self._on_new_token()

    def _refresh(self, current: Token) -> Token:
        """Spend the refresh token once; called with `_refresh_lock` held."""
        started = self._clock.now()
        try:
            token = self._endpoint.refresh(current.refresh_token)
        except InvalidGrant:
            self._set_state(AuthState.INVALID_GRANT, drop_token=True)
            self._log.error("token_refresh_failed", reason="invalid_grant",
                            hint="authorize again from the status page")
            raise
        except InvalidClient:
            self._set_state(AuthState.INVALID_CLIENT)
            self._log.error("token_refresh_failed", reason="invalid_client",
                            hint="check the client id and secret")
            raise
        except NetatmoError as exc:
            # The caller reports the failure in its own line; here only for debugging.
            self._log.debug("token_refresh_failed", reason=exc.reason, error=str(exc),
                            kept_token=True)
            raise
        token = current.renewed_as(token)
        theirs = self._store.load_if_replaced()
        if theirs is not None and supersedes(theirs, token):
            # Written without the lock (the Go exporter, a copy): the newer one wins.
            self._take(theirs, "token_renewal_superseded",
                       "kept the token another program wrote during the renewal")
            return theirs
        with self._lock:
            self._persist(token)
            self._token = token
            # A refresh keeps the grant's scopes: a missing scope stays missing until the
            # user authorizes again.
            if self._state is not AuthState.MISSING_SCOPE:
                self._state = AuthState.OK
            self._bump()
        self._log.info("token_refreshed", expires_in=round(token.lifetime or 0),
                       took=round(self._clock.now() - started, 3))
        return token

    def _set_state(self, state: AuthState, drop_token: bool = False) -> None:
        with self._lock:
            self._state = state
            if drop_token:
                self._token = None
            self._bump()

    def _persist(self, token: Token) -> None:
        # The old refresh token is already dead at Netatmo, so the new one is kept in memory
        # even when the disk refuses it; the next change or the shutdown flush retries.
        try:
            self._store.save(token)
            self._unsaved = False
            self._file_problem = None
        except TokenFileError as exc:
            self._unsaved = True
            self._file_problem = str(exc)
            self._log.error("token_save_failed", problem=str(exc),
                            hint="the token is kept in memory; fix the file system")

    def _bump(self) -> None:
        self.generation += 1
