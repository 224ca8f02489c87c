"""The OAuth scopes the exporter knows, each named once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netatmo_exporter.domain.ports import EventLog, ScopeGrants

STATIONS_SCOPE = "read_station"
HOMECOACH_SCOPE = "read_homecoach"
THERMOSTAT_SCOPE = "read_thermostat"
WEATHER_SCOPES = (STATIONS_SCOPE, HOMECOACH_SCOPE)
KNOWN_SCOPES = (*WEATHER_SCOPES, THERMOSTAT_SCOPE)
DEFAULT_SCOPES = WEATHER_SCOPES


class RefusedScopes:
    """Scopes a poller stopped asking for because the authorization lacks them. Each is
    reported once (a warning, and the token's state turns to missing scope) and not asked
    for again until `clear()`, which a new authorization calls."""

    def __init__(self, tokens: ScopeGrants, log: EventLog) -> None:
        self._tokens = tokens
        self._log = log
        self._refused: frozenset[str] = frozenset()

    def __contains__(self, scope: object) -> bool:
        return scope in self._refused

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._refused))

    def refuse(self, scope: str, reason: str) -> None:
        if scope in self._refused:
            return
        self._refused |= {scope}
        self._tokens.mark_missing_scope()
        self._log.warning("endpoint_skipped", scope=scope, reason=reason)

    def refuse_ungranted(self, scopes: tuple[str, ...]) -> None:
        """Refuses those of `scopes` the current grant does not list (an older token that
        lists no scopes is given the benefit of the doubt)."""
        granted = self._tokens.granted_scope()
        for scope in scopes:
            if granted is not None and scope not in granted:
                self.refuse(scope, f"the authorization does not include {scope}: authorize "
                                   "again with it, or drop it from --scope")

    def clear(self) -> None:
        self._refused = frozenset()
