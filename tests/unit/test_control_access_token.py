"""The control socket hands out access tokens the service renews, over a real unix socket."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from netatmo_exporter.adapters.system.control_client import (
    ServiceBudget,
    ServiceTokens,
    ServiceUnreachable,
    service_listening,
)
from netatmo_exporter.adapters.system.control_socket import ControlSocketServer
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.call_policy import CallBudget
from netatmo_exporter.domain.errors import NotAuthorized, TransientError
from tests.unit.fakes import FakeClock, FakeLog, FakeTokenEndpoint, FakeTokenStore, fresh_token


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # A unix socket path must stay under about 100 bytes; pytest's tmp_path may not.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ctl") as name:
        yield Path(name)


def _serve(path: Path, manager: TokenManager, log: FakeLog) -> ControlSocketServer:
    server = ControlSocketServer(str(path), lambda: "/fake/token.json", log, manager)
    server.start()
    return server


def test_the_service_renews_when_due_and_after_a_rejection(short_dir: Path) -> None:
    clock, log = FakeClock(), FakeLog()
    endpoint = FakeTokenEndpoint(clock, lifetime=3600.0)
    store = FakeTokenStore(fresh_token(clock, lifetime=3600.0))
    manager = TokenManager(endpoint, store, clock, log)
    manager.load()
    path = short_dir / "control.sock"
    server = _serve(path, manager, log)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert service_listening(str(path))
        tokens = ServiceTokens(str(path), timeout=5.0)
        assert tokens.access_token() == "access-0"
        clock.advance(3600.0)  # expired: the service renews and persists first
        renewed = tokens.access_token()
        assert renewed != "access-0" and store.saved[-1].access_token == renewed
        tokens.reject_access_token(renewed)
        again = tokens.access_token()
        assert again != renewed and len(endpoint.refreshes) == 2
    finally:
        server.stop()
    logged = repr(log.events)
    assert "access-" not in logged and "refresh-" not in logged


def test_an_unauthorized_service_says_so(short_dir: Path) -> None:
    clock, log = FakeClock(), FakeLog()
    manager = TokenManager(FakeTokenEndpoint(clock), FakeTokenStore(None), clock, log)
    manager.load()
    path = short_dir / "control.sock"
    server = _serve(path, manager, log)
    try:
        with pytest.raises(NotAuthorized):
            ServiceTokens(str(path), timeout=5.0).access_token()
    finally:
        server.stop()


def test_a_service_that_went_away_is_named(short_dir: Path) -> None:
    path = short_dir / "gone.sock"
    assert not service_listening(str(path))
    with pytest.raises(ServiceUnreachable, match=r"no longer answers on .*gone\.sock"):
        ServiceTokens(str(path), timeout=5.0).access_token()


def test_an_exporter_without_token_handout_is_told_apart(short_dir: Path) -> None:
    path = short_dir / "old.sock"
    server = ControlSocketServer(str(path), lambda: "/fake/token.json", FakeLog())
    server.start()
    try:
        with pytest.raises(ServiceUnreachable, match="does not hand out access tokens"):
            ServiceTokens(str(path), timeout=5.0).access_token()
    finally:
        server.stop()


def test_the_backfill_books_its_calls_in_the_services_budget(short_dir: Path) -> None:
    clock = FakeClock()
    budget = CallBudget()
    path = short_dir / "control.sock"
    server = ControlSocketServer(str(path), lambda: "/fake/token.json", FakeLog(),
                                 book=lambda share: budget.take("backfill", share,
                                                                clock.now()))
    server.start()
    try:
        remote = ServiceBudget(str(path), timeout=5.0)
        assert remote.take("backfill", 2, clock.now()) == 0.0
        clock.advance(10.0)
        assert remote.take("backfill", 2, clock.now()) == 0.0
        assert remote.take("backfill", 2, clock.now()) == pytest.approx(3590.0)
        assert dict(budget.use(clock.now()).by_caller) == {"backfill": 2}
        with pytest.raises(TransientError, match="bad_share"):
            remote.take("backfill", 501, clock.now())
    finally:
        server.stop()


def test_an_exporter_that_books_nothing_leaves_the_backfill_its_own_budget(
        short_dir: Path) -> None:
    path = short_dir / "old.sock"
    server = ControlSocketServer(str(path), lambda: "/fake/token.json", FakeLog())
    server.start()
    try:
        remote = ServiceBudget(str(path), timeout=5.0)
        assert remote.take("backfill", 250, 0.0) == 0.0
        assert not remote.booking
    finally:
        server.stop()
