"""In-memory fakes of the domain's ports, with their state in plain sight."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.errors import NetatmoError, TokenFileError
from netatmo_exporter.domain.history.follower import CheckpointError
from netatmo_exporter.domain.history.plan import Series
from netatmo_exporter.domain.history.remote_write import Batch, ReceiverError
from netatmo_exporter.domain.weather.model import Module, Readings, Station


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.current = now
        self.waits: list[float] = []

    def now(self) -> float:
        return self.current

    def __call__(self) -> float:
        """The clock as the parts that take a `Callable[[], float]` read it."""
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += seconds

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """A clock that can also sleep: jumps `timeout` ahead unless `event` is set."""
        if event.is_set():
            return True
        self.waits.append(timeout)
        self.advance(timeout)
        return False


class FakeLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _add(self, level: str, event: str, kw: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((level, event, kw))

    def debug(self, event: str, **kw: Any) -> None:
        self._add("debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._add("info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._add("warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._add("error", event, kw)

    def names(self, level: str | None = None) -> list[str]:
        return [event for lvl, event, _ in self.events if level in (None, lvl)]


class FakeAccessTokens:
    """The `AccessTokens` port as the backfill's control-socket client would satisfy it."""

    def __init__(self) -> None:
        self.issued = 0
        self.rejected: list[str] = []

    def access_token(self) -> str:
        return f"access-{self.issued}"

    def reject_access_token(self, access_token: str) -> None:
        self.rejected.append(access_token)
        self.issued += 1


class FakeTokenStore:
    def __init__(self, token: Token | None = None, *, fail_save: bool = False) -> None:
        self.saved: list[Token] = []
        self.initial = token
        self.fail_save = fail_save
        self.written_by_others: list[Token] = []
        self.removed = False
        """The file was removed by someone else; a save puts it back."""
        self.renewal_locks = 0
        self.on_renewal_lock: Callable[[], None] = lambda: None

    @property
    def location(self) -> str:
        return "/fake/token.json"

    def load(self) -> Token | None:
        return self.initial

    def load_if_replaced(self) -> Token | None:
        return self.written_by_others.pop(0) if self.written_by_others else None

    def holds_last_seen(self) -> bool:
        return not self.removed and not self.written_by_others

    def renewal_lock(self, wait: float = 120.0) -> contextlib.AbstractContextManager[object]:
        """Taken at once; `on_renewal_lock` plays what another process did meanwhile."""
        self.renewal_locks += 1
        self.on_renewal_lock()
        return contextlib.nullcontext()

    def save(self, token: Token) -> None:
        if self.fail_save:
            raise TokenFileError("cannot write token file /fake/token.json: No space left")
        self.saved.append(token)
        self.removed = False


class FakeTokenEndpoint:
    """Rotates refresh tokens like Netatmo; `failures` are raised first, in order."""

    def __init__(self, clock: FakeClock, lifetime: float = 10800.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.refreshes: list[str] = []
        self.failures: list[NetatmoError] = []
        self.before_answer: Callable[[], None] = lambda: None
        self._lock = threading.Lock()

    def exchange_code(self, code: str, redirect_uri: str, scope: str) -> Token:
        return self._grant(f"code-{code}")

    def refresh(self, refresh_token: str) -> Token:
        with self._lock:
            self.refreshes.append(refresh_token)
            if self.failures:
                raise self.failures.pop(0)
        self.before_answer()
        return self._grant(refresh_token)

    def _grant(self, seed: str) -> Token:
        with self._lock:
            n = len(self.refreshes)
        return Token.from_grant(f"access-{n}-{seed}", f"refresh-{n}-{seed}", self.lifetime,
                                self.clock.now(), ("read_station", "read_homecoach"))


class FakeWeatherSource:
    """Answers every call with `stations`, or raises the queued errors first."""

    def __init__(self, stations: tuple[Station, ...] = ()) -> None:
        self.stations = stations
        self.homecoaches: tuple[Station, ...] = ()
        self.calls: list[tuple[str, str]] = []
        self.device_ids: list[str | None] = []
        self.errors: dict[str, list[NetatmoError]] = {"stations": [], "homecoaches": []}

    def fetch_stations(self, access_token: str, favorites: bool,
                       device_id: str | None = None) -> tuple[Station, ...]:
        return self._answer("stations", access_token, device_id)

    def fetch_homecoaches(self, access_token: str,
                          device_id: str | None = None) -> tuple[Station, ...]:
        return self._answer("homecoaches", access_token, device_id)

    def _answer(self, endpoint: str, access_token: str, device_id: str | None
                ) -> tuple[Station, ...]:
        self.calls.append((endpoint, access_token))
        self.device_ids.append(device_id)
        if self.errors[endpoint]:
            raise self.errors[endpoint].pop(0)
        devices = self.stations if endpoint == "stations" else self.homecoaches
        return tuple(d for d in devices if device_id in (None, d.id))


def station(station_id: str = "70:ee:50:00:00:01", now: float = 1_700_000_000.0) -> Station:
    main = Module(id=station_id, type="NAMain", name="Salon",
                  readings=Readings(time_utc=now - 60, temperature=21.5))
    return Station(id=station_id, kind="station", main=main, name="Maison", home_name="Home")


def fresh_token(clock: FakeClock, lifetime: float = 10800.0, tag: str = "0") -> Token:
    return Token.from_grant(f"access-{tag}", f"refresh-{tag}", lifetime, clock.now(),
                            ("read_station", "read_homecoach"))


class FakeReceiver:
    """A remote-write receiver: takes every batch (`taken`: per "module or room/type", the
    samples in arrival order; `stored`: all samples taken) unless `errors` holds a refusal
    for the next write; `attempts`: every batch offered. With a `gate`, a write waits (30 s
    at most) until it is set, `entered` set meanwhile."""

    def __init__(self, errors: Sequence[ReceiverError] = ()) -> None:
        self.taken: dict[str, list[tuple[int, float]]] = {}
        self.stored: list[tuple[int, float]] = []
        self.errors = list(errors)
        self.attempts: list[Batch] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    @property
    def writes(self) -> int:
        return len(self.attempts)

    def write(self, batch: Batch) -> int:
        self.attempts.append(list(batch))
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30.0)
        if self.errors:
            raise self.errors.pop(0)
        count = 0
        for series, samples in batch:
            self.taken.setdefault(_name(series), []).extend(samples)
            self.stored += samples
            count += len(samples)
        return count


def _name(series: Series) -> str:
    return f"{dict(series.labels).get('module') or dict(series.labels).get('room')}/" \
           f"{series.measure_type}"


class MemoryCheckpoints:
    def __init__(self, initial: Mapping[str, int] | None = None) -> None:
        self.saved: list[dict[str, int]] = [dict(initial)] if initial else []
        self.fail = False

    def load(self) -> dict[str, int]:
        return dict(self.saved[-1]) if self.saved else {}

    def save(self, checkpoints: Mapping[str, int]) -> None:
        if self.fail:
            raise CheckpointError("cannot write /var/lib/x/token.json.history.json: No space")
        self.saved.append(dict(checkpoints))
