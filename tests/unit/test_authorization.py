"""TokenManager: single-flight refresh, persisted before use, errors keep or drop the token."""

from __future__ import annotations

import threading
import time

import pytest

from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.domain.authorization.tokens import AuthState, TokenManager
from netatmo_exporter.domain.errors import (
    CorruptTokenFile,
    InvalidClient,
    InvalidGrant,
    NotAuthorized,
    TransientError,
)
from tests.support.harness import wait_until
from tests.unit.fakes import FakeClock, FakeLog, FakeTokenEndpoint, FakeTokenStore, fresh_token


def manager(token: Token | None, store: FakeTokenStore | None = None,
            lifetime: float = 10800.0, clock: FakeClock | None = None
            ) -> tuple[TokenManager, FakeTokenEndpoint, FakeTokenStore, FakeClock, FakeLog]:
    clock = clock or FakeClock()
    endpoint = FakeTokenEndpoint(clock, lifetime)
    store = store or FakeTokenStore(token)
    store.initial = token
    log = FakeLog()
    tokens = TokenManager(endpoint, store, clock, log)
    tokens.load()
    return tokens, endpoint, store, clock, log


def test_fresh_token_is_used_without_refresh() -> None:
    clock = FakeClock()
    tokens, endpoint, store, _, _ = manager(fresh_token(clock), clock=clock)

    assert tokens.access_token() == "access-0"
    assert endpoint.refreshes == [] and store.saved == []


def test_no_token_raises_not_authorized() -> None:
    tokens, endpoint, _, _, _ = manager(None)

    with pytest.raises(NotAuthorized):
        tokens.access_token()
    assert not tokens.authorized
    assert tokens.status().state is AuthState.NEEDS_AUTHORIZATION
    assert endpoint.refreshes == []


def test_refresh_token_only_is_refreshed_and_persisted_before_use() -> None:
    tokens, endpoint, store, _, _ = manager(Token(refresh_token="only"))

    access = tokens.access_token()

    assert endpoint.refreshes == ["only"]
    assert [t.access_token for t in store.saved] == [access]
    assert store.saved[-1].refresh_token != "only"
    assert tokens.status().state is AuthState.OK


def test_new_token_is_on_the_store_before_the_caller_gets_it() -> None:
    clock = FakeClock()
    tokens, endpoint, store, _, _ = manager(fresh_token(clock, lifetime=4), clock=clock)
    clock.advance(3.7)
    seen_by_endpoint_caller: list[int] = []

    def check() -> None:
        seen_by_endpoint_caller.append(len(store.saved))

    endpoint.before_answer = check
    access = tokens.access_token()

    assert seen_by_endpoint_caller == [0]
    assert store.saved[-1].access_token == access


def test_concurrent_callers_at_expiry_cause_exactly_one_refresh() -> None:
    clock = FakeClock()
    tokens, endpoint, store, _, _ = manager(fresh_token(clock, lifetime=4), clock=clock)
    clock.advance(4.0)
    endpoint.before_answer = lambda: time.sleep(0.05)
    start = threading.Barrier(8)
    results: list[str] = []

    def call() -> None:
        start.wait(5)
        results.append(tokens.access_token())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(endpoint.refreshes) == 1
    assert len(store.saved) == 1
    assert results == [store.saved[0].access_token] * 8


def test_invalid_grant_drops_the_token_and_says_so() -> None:
    tokens, endpoint, _, _, log = manager(Token(refresh_token="dead"))
    endpoint.failures.append(InvalidGrant())

    with pytest.raises(InvalidGrant):
        tokens.access_token()

    status = tokens.status()
    assert status.state is AuthState.INVALID_GRANT
    assert not status.has_refresh_token and not status.has_access_token
    assert not tokens.authorized
    assert "token_refresh_failed" in log.names("error")
    with pytest.raises(NotAuthorized):
        tokens.access_token()
    assert endpoint.refreshes == ["dead"]


def test_invalid_client_keeps_the_token() -> None:
    tokens, endpoint, _, _, _ = manager(Token(refresh_token="r"))
    endpoint.failures.append(InvalidClient())

    with pytest.raises(InvalidClient):
        tokens.access_token()

    assert tokens.status().state is AuthState.INVALID_CLIENT
    assert tokens.status().has_refresh_token


def test_transient_error_keeps_the_token_and_the_next_call_retries_it() -> None:
    tokens, endpoint, store, _, _ = manager(Token(refresh_token="keep-me"))
    endpoint.failures.append(TransientError("Netatmo token: HTTP 502", "server_error"))

    with pytest.raises(TransientError):
        tokens.access_token()

    assert tokens.status().has_refresh_token
    assert tokens.status().state is AuthState.OK
    assert store.saved == []
    tokens.access_token()
    assert endpoint.refreshes == ["keep-me", "keep-me"]


def test_save_failure_keeps_the_new_token_in_memory_and_reports() -> None:
    store = FakeTokenStore(fail_save=True)
    tokens, endpoint, _, _, log = manager(Token(refresh_token="r0"), store)

    access = tokens.access_token()

    status = tokens.status()
    assert status.unsaved
    assert status.token_file_problem is not None and "No space" in status.token_file_problem
    assert "token_save_failed" in log.names("error")
    assert tokens.access_token() == access
    assert endpoint.refreshes == ["r0"]
    store.fail_save = False
    tokens.flush()
    assert store.saved[-1].access_token == access
    assert not tokens.status().unsaved


def test_rejected_access_token_is_refreshed_next_time() -> None:
    clock = FakeClock()
    tokens, endpoint, _, _, _ = manager(fresh_token(clock), clock=clock)

    tokens.reject_access_token("some-other-token")
    assert tokens.access_token() == "access-0"
    tokens.reject_access_token("access-0")
    assert tokens.access_token() != "access-0"
    assert endpoint.refreshes == ["refresh-0"]


def test_corrupt_store_is_reported_and_leaves_the_exporter_unauthorized() -> None:
    class CorruptStore(FakeTokenStore):
        def load(self) -> Token | None:
            raise CorruptTokenFile("token file /fake is unusable (not valid JSON)",
                                   "/fake.corrupt-1")

    tokens, _, _, _, log = manager(None, CorruptStore())

    assert not tokens.authorized
    assert "not valid JSON" in str(tokens.status().token_file_problem)
    assert "token_file_corrupt" in log.names("error")


def test_authorizing_persists_and_notifies() -> None:
    tokens, _, store, _, _ = manager(None)
    woken: list[bool] = []
    tokens.set_on_new_token(lambda: woken.append(True))

    tokens.authorize_with_refresh_token("pasted")

    assert woken == [True]
    assert store.saved[-1].access_token == tokens.access_token()


def test_no_log_event_carries_a_token_value() -> None:
    tokens, endpoint, store, _, log = manager(Token(refresh_token="refresh-secret"))
    tokens.access_token()
    endpoint.failures.append(InvalidGrant())
    tokens.reject_access_token(store.saved[-1].access_token)
    with pytest.raises(InvalidGrant):
        tokens.access_token()

    secrets = {"refresh-secret", *(t.access_token for t in store.saved),
               *(t.refresh_token for t in store.saved)}
    text = repr(log.events)
    assert not [s for s in secrets if s in text]


def test_status_and_scrapes_do_not_wait_for_a_refresh_in_flight() -> None:
    tokens, endpoint, store, _, _ = manager(Token(refresh_token="r0"))
    in_flight, release = threading.Event(), threading.Event()

    def hold() -> None:
        in_flight.set()
        release.wait(10)

    endpoint.before_answer = hold
    refresher = threading.Thread(target=tokens.access_token)
    refresher.start()
    try:
        assert in_flight.wait(5)
        reader = threading.Thread(target=lambda: (tokens.status(), tokens.authorized,
                                                  tokens.granted_scope()))
        reader.start()
        reader.join(5)
        reader_blocked = reader.is_alive()
    finally:
        release.set()
        refresher.join(10)

    assert not reader_blocked
    assert len(store.saved) == 1


def test_a_token_another_program_wrote_is_adopted_not_overwritten() -> None:
    tokens, endpoint, store, clock, log = manager(Token(refresh_token="old"))
    from_login = fresh_token(clock, tag="login")
    store.written_by_others.append(from_login)

    assert tokens.access_token() == from_login.access_token
    assert endpoint.refreshes == []
    assert "token_file_replaced" in log.names("warning")
    tokens.flush()
    assert store.saved == []  # the file holds it already: not written again


def test_a_renewal_another_process_made_while_we_waited_for_the_lock_is_adopted() -> None:
    clock = FakeClock()
    tokens, endpoint, store, _, _ = manager(fresh_token(clock, lifetime=600.0), clock=clock)
    clock.advance(600.0)
    theirs = fresh_token(clock, tag="theirs")  # renewed by the service from the same file
    store.on_renewal_lock = lambda: store.written_by_others.append(theirs)

    assert tokens.access_token() == theirs.access_token
    assert endpoint.refreshes == []  # our refresh token was spent by them: not used again
    assert store.renewal_locks == 1


def test_a_renewal_holds_the_store_lock_and_a_fresh_token_does_not_take_it() -> None:
    clock = FakeClock()
    tokens, endpoint, store, _, _ = manager(fresh_token(clock, lifetime=600.0), clock=clock)
    tokens.access_token()
    assert store.renewal_locks == 0
    clock.advance(600.0)

    tokens.access_token()

    assert endpoint.refreshes == ["refresh-0"] and store.renewal_locks == 1


def test_missing_scope_survives_a_refresh_until_a_new_authorization() -> None:
    tokens, _, _, clock, _ = manager(fresh_token(FakeClock(), lifetime=100.0))
    tokens.mark_missing_scope()
    clock.advance(95.0)

    tokens.access_token()
    assert tokens.status().state is AuthState.MISSING_SCOPE

    tokens.authorize_with_code("code", "http://127.0.0.1:9210/auth/callback", "read_station")
    assert tokens.status().state is AuthState.OK


# -- the rule of every write of the token file -------------------------------------------


def test_a_flush_writes_nothing_when_the_file_holds_our_token() -> None:
    clock = FakeClock()
    tokens, _, store, _, log = manager(fresh_token(clock, lifetime=600.0), clock=clock)
    clock.advance(600.0)
    tokens.access_token()  # renewed and saved
    saved = list(store.saved)

    tokens.flush()

    assert store.saved == saved and store.renewal_locks == 1
    assert ("info", "token_flushed") in [(lvl, e) for lvl, e, _ in log.events]


def test_a_flush_puts_back_a_removed_file() -> None:
    clock = FakeClock()
    tokens, _, store, _, _ = manager(fresh_token(clock), clock=clock)
    store.removed = True

    tokens.flush()

    assert [t.access_token for t in store.saved] == ["access-0"] and store.renewal_locks == 1


def test_a_flush_writes_a_token_whose_save_failed_under_the_file_lock() -> None:
    clock = FakeClock()
    store = FakeTokenStore(fail_save=True)
    tokens, _, _, _, _ = manager(fresh_token(clock, lifetime=600.0), store=store, clock=clock)
    clock.advance(600.0)
    renewed = tokens.access_token()
    store.fail_save = False
    locks = store.renewal_locks

    tokens.flush()

    assert [t.access_token for t in store.saved] == [renewed]
    assert store.renewal_locks == locks + 1
    assert not tokens.status().unsaved


def test_a_flush_adopts_a_newer_authorization_instead_of_writing_our_unsaved_token() -> None:
    clock = FakeClock()
    store = FakeTokenStore(fail_save=True)
    tokens, _, _, _, log = manager(fresh_token(clock, lifetime=600.0), store=store, clock=clock)
    clock.advance(600.0)
    tokens.access_token()  # unsaved
    store.fail_save = False
    clock.advance(1.0)
    from_login = fresh_token(clock, tag="login").authorized(clock.now())
    store.on_renewal_lock = lambda: store.written_by_others.append(from_login)

    tokens.flush()

    assert store.saved == []
    assert tokens.access_token() == from_login.access_token
    assert "token_file_replaced" in log.names("warning")


def test_a_renewal_carries_the_authorization_it_descends_from() -> None:
    clock = FakeClock()
    tokens, _, store, _, _ = manager(None, clock=clock)
    tokens.authorize_with_code("c", "http://x/auth/callback", "read_station")
    authorized = store.saved[-1]
    clock.advance(20000.0)

    tokens.access_token()

    assert authorized.authorized_at is not None and authorized.renewals == 0
    assert store.saved[-1].authorized_at == authorized.authorized_at
    assert store.saved[-1].renewals == 1


def test_a_renewal_of_an_older_grant_never_replaces_a_newer_authorization() -> None:
    # Written without the lock (a program that follows no rule of ours) while the renewal
    # of our older grant waited for Netatmo: the newer authorization is kept.
    clock = FakeClock()
    ours = fresh_token(clock, lifetime=600.0).authorized(clock.now())
    tokens, endpoint, store, _, log = manager(ours, clock=clock)
    clock.advance(600.0)
    newer = fresh_token(clock, tag="pasted").authorized(clock.now())
    endpoint.before_answer = lambda: store.written_by_others.append(newer)

    assert tokens.access_token() == newer.access_token

    assert endpoint.refreshes == ["refresh-0"] and store.saved == []
    assert "token_renewal_superseded" in log.names("warning")


def test_an_older_authorization_in_the_file_is_not_adopted_and_ours_written_back() -> None:
    clock = FakeClock()
    older = fresh_token(clock, tag="older").authorized(clock.now())
    clock.advance(10.0)
    tokens, _, store, _, log = manager(fresh_token(clock).authorized(clock.now()), clock=clock)
    store.written_by_others.append(older)  # a backup put back by hand

    assert tokens.access_token() == "access-0"
    tokens.flush()

    assert [t.access_token for t in store.saved] == ["access-0"]
    assert "token_file_older_ignored" in log.names("warning")


def test_an_authorization_waits_for_the_file_lock_and_a_newer_one_there_wins() -> None:
    clock = FakeClock()
    tokens, _, store, _, log = manager(fresh_token(clock), clock=clock)
    # Another login finished while our code exchange was on its way, then wrote its token.
    later = fresh_token(clock, tag="later").authorized(clock.now() + 5.0)
    store.on_renewal_lock = lambda: store.written_by_others.append(later)

    tokens.authorize_with_code("c", "http://x/auth/callback", "read_station")

    assert store.saved == [] and store.renewal_locks == 1
    assert tokens.access_token() == later.access_token
    assert "authorization_superseded" in log.names("warning")


def test_a_flush_answers_while_a_renewal_hangs_and_writes_nothing() -> None:
    clock = FakeClock()
    tokens, endpoint, store, _, _ = manager(fresh_token(clock, lifetime=600.0), clock=clock)
    clock.advance(600.0)
    answer = threading.Event()
    endpoint.before_answer = lambda: answer.wait(10.0) and None
    renewal = threading.Thread(target=tokens.access_token)
    renewal.start()
    try:
        wait_until("renewal at the endpoint", lambda: endpoint.refreshes, 5.0, every=0.01)

        assert tokens.flush(wait=0.05) == store.location

        assert store.saved == []
    finally:
        answer.set()
        renewal.join(5.0)
    assert len(store.saved) == 1
