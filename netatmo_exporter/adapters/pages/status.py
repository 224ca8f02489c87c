"""The status page: authorization state, the advice that fixes a problem, the modules'
last readings and the fetch schedule, the Energy rooms, and the two ways to authorize."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import bottle

from netatmo_exporter.adapters.pages import energy_view, status_view
from netatmo_exporter.adapters.pages.templates import Templates
from netatmo_exporter.adapters.web.form_guard import FormGuard
from netatmo_exporter.adapters.web.site_address import SiteAddress
from netatmo_exporter.domain.authorization.tokens import AuthState
from netatmo_exporter.domain.call_policy import BudgetWaitState
from netatmo_exporter.domain.ports import Clock
from netatmo_exporter.domain.read_model import ReadService

if TYPE_CHECKING:
    from netatmo_exporter.domain.history.follower import HistoryState

FIRST_DATA_RELOAD_SECONDS = 3
DONE_MESSAGES = {
    "authorized": "Authorized. The first data arrives within a few seconds.",
    "token": "Refresh token accepted and saved. The first data arrives within a few seconds.",
}


class StatusPage:
    def __init__(self, templates: Templates, address: SiteAddress, forms: FormGuard,
                 read: ReadService, clock: Clock, *,
                 scopes: tuple[str, ...], age_stale: float, debug_handlers: bool,
                 host_names: tuple[str, ...] = (), basic_auth: bool = False,
                 history: Callable[[], HistoryState] | None = None,
                 history_receiver: str = "", history_interval: float = 0.0,
                 budget_waits: Callable[[], BudgetWaitState] = BudgetWaitState) -> None:
        self._templates = templates
        self._address = address
        self._forms = forms
        self._read = read
        self._clock = clock
        self._scopes = scopes
        self._age_stale = age_stale
        self._debug_handlers = debug_handlers
        self._host_names = host_names
        self._basic_auth = basic_auth  # else the page says anyone on the LAN may use it
        self._history = history
        self._history_receiver = history_receiver
        self._history_interval = history_interval
        self._budget_waits = budget_waits

    def handlers(self) -> dict[str, Callable[[], Any]]:
        return {"status": self.status}

    def status(self) -> str:
        now = self._clock.now()
        # Once: the snapshot and status of one fetch, the token's facts of that moment.
        reading = self._read()
        token, weather = reading.token, reading.weather
        refresh, snapshot = weather.status, weather.snapshot
        advice = [a for a in (status_view.token_advice(token, self._scopes),
                              status_view.refresh_advice(refresh, self._scopes),
                              status_view.file_advice(token)) if a is not None]
        if token.state is AuthState.OK and token.authorized:
            state_word, headline = "authorized", "Authorized: the exporter reads your Netatmo data."
        elif token.state is AuthState.MISSING_SCOPE:
            state_word, headline = "missing-scope", "Authorized, but without every permission."
        else:
            state_word = "not-authorized"
            headline = "Not authorized: the exporter cannot read your Netatmo data yet."
        waiting = token.authorized and snapshot is None
        return self._templates.render(
            "status",
            title="Status",
            # Until the first data is there, the page reloads itself (no script needed).
            refresh_seconds=FIRST_DATA_RELOAD_SECONDS if waiting else 0,
            host_names=self._host_names,
            basic_auth=self._basic_auth,
            state_word=state_word,
            headline=headline,
            done=DONE_MESSAGES.get(bottle.request.query.get("done", ""), ""),
            expiry_local=_local(token.expires_at),
            expiry_relative=_relative(token.expires_at, now),
            token=token,
            refresh=refresh,
            refresh_time=_local(refresh.attempted_at),
            refresh_relative=_relative(refresh.attempted_at, now),
            advice=list({a.problem: a for a in advice}.values()),
            redirect_uri=self._address.redirect_uri(),
            external_url=self._address.browser_url(),
            scopes=" ".join(self._scopes),
            host_warning=self._address.host_mismatch(),
            rows=status_view.module_lines(snapshot, now, self._age_stale),
            budget_waits=status_view.budget_waits(self._budget_waits(), now),
            schedule=status_view.schedule(weather.settings, refresh, weather.cadences,
                                          snapshot, now),
            fetched=_relative(snapshot.fetched_at if snapshot is not None else None, now),
            skipped=", ".join(snapshot.skipped) if snapshot is not None else "",
            form_token=self._forms.issue(),
            debug_handlers=self._debug_handlers,
            **energy_view.page_values(reading.energy),
            **self._history_values(now),
        )

    def _history_values(self, now: float) -> dict[str, Any]:
        if self._history is None:
            return {"history_enabled": False}
        # The follower's view loads with the follower only.
        from netatmo_exporter.adapters.pages import history_view

        return history_view.page_values(self._history, self._history_receiver,
                                        self._history_interval, now)


def _local(timestamp: float | None) -> str:
    return status_view.local_time(timestamp) if timestamp is not None else ""


def _relative(timestamp: float | None, now: float) -> str:
    return status_view.relative(timestamp, now) if timestamp is not None else ""
