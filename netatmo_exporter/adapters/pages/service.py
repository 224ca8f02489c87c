"""Answers for machines rather than people: the version, liveness and readiness probes,
the stylesheet, and the debug JSON (facts only: never a token's value, never a call to
Netatmo)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bottle

from netatmo_exporter.adapters.web.wsgi import PLAIN_TEXT
from netatmo_exporter.domain.ports import Clock
from netatmo_exporter.domain.read_model import ReadService

STATIC = Path(__file__).with_name("static")


class ServicePages:
    def __init__(self, read: ReadService, clock: Clock, *, version: str, commit: str) -> None:
        self._read = read
        self._clock = clock
        self._version = json.dumps({"version": version, "commit": commit})

    def handlers(self) -> dict[str, Callable[[], Any]]:
        return {"version": self.version, "healthy": _healthy, "ready": self.ready,
                "stylesheet": _stylesheet, "debug_data": self.debug_data,
                "debug_token": self.debug_token}

    def version(self) -> str:
        bottle.response.content_type = "application/json"
        return self._version

    def ready(self) -> str:
        bottle.response.content_type = PLAIN_TEXT
        if self._read().weather.snapshot is None:
            bottle.response.status = 503
            return "not ready: no data from Netatmo yet\n"
        return "OK\n"

    def debug_data(self) -> str:
        """The cached snapshot as the refresher left it."""
        bottle.response.content_type = "application/json"
        weather = self._read().weather
        snapshot = weather.snapshot
        return json.dumps({
            "snapshot": None if snapshot is None else dataclasses.asdict(snapshot),
            "refresh": dataclasses.asdict(weather.status),
        }, indent=1, ensure_ascii=False)

    def debug_token(self) -> str:
        """Facts about the token (validity, expiry, which parts exist)."""
        bottle.response.content_type = "application/json"
        status = self._read().token
        facts = dataclasses.asdict(status)
        facts["state"] = status.state.value
        if status.expires_at is not None:
            facts["expires_in_seconds"] = round(status.expires_at - self._clock.now(), 1)
        return json.dumps(facts, indent=1)


def _healthy() -> str:
    bottle.response.content_type = PLAIN_TEXT
    return "OK\n"


def _stylesheet() -> Any:
    return bottle.static_file("style.css", root=str(STATIC), mimetype="text/css")
