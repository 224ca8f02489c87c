"""The LAN edge's small parts on a clock the test moves: who a client is, fair turns at
the password check, a log that a flood cannot flood, one line for any failure."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

import bottle
import pytest

from netatmo_exporter.adapters.lan.clients import client_key, client_network
from netatmo_exporter.adapters.lan.fair_gate import FairGate
from netatmo_exporter.adapters.lan.token_call_limit import TokenCallLimit
from netatmo_exporter.adapters.pages.oauth_flow import PendingStates, StateProblem, TooManyPending
from netatmo_exporter.adapters.system.logging import LogThrottle, SecretRedactor, configure_logging
from netatmo_exporter.adapters.web.http_server import contain_errors
from tests.support.harness import wait_until
from tests.unit.fakes import FakeClock


@pytest.mark.parametrize(("address", "key"), [
    ("127.0.0.2", "127.0.0.2"),
    ("::ffff:192.168.1.20", "192.168.1.20"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::2", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("not an address", "not an address"),
])
def test_a_client_is_its_ipv4_address_or_its_ipv6_network(address: str, key: str) -> None:
    assert client_key(address) == key


def test_one_turn_per_client_and_the_least_recently_served_goes_next() -> None:
    gate = FairGate(slots=1, waiting=2, patience=5.0)
    assert gate.enter("attacker")
    assert not gate.enter("attacker")  # its own second guess waits for nothing
    order: list[str] = []

    def wait_for_turn(client: str) -> None:
        if gate.enter(client):
            order.append(client)
            gate.leave(client)

    waiting = threading.Thread(target=wait_for_turn, args=("prometheus",))
    waiting.start()
    wait_until("waiter at the gate", lambda: gate._waiters, 5.0, every=0.01)
    gate.leave("attacker")
    waiting.join(5.0)

    assert order == ["prometheus"]


def test_a_newcomer_takes_the_place_of_the_most_recently_served_waiter() -> None:
    gate = FairGate(slots=1, waiting=1, patience=5.0)
    results: dict[str, bool] = {}
    for client in ("a", "b"):  # both served once, a before b
        assert gate.enter(client)
        gate.leave(client)
    assert gate.enter("a")
    waiter = threading.Thread(target=lambda: results.update(b=gate.enter("b")))
    waiter.start()
    wait_until("waiter at the gate", lambda: gate._waiters, 5.0, every=0.01)
    newcomer = threading.Thread(target=lambda: results.update(new=gate.enter("new")))
    newcomer.start()
    waiter.join(5.0)
    gate.leave("a")
    newcomer.join(5.0)

    assert results == {"b": False, "new": True}


@pytest.mark.parametrize(("address", "network"), [
    ("127.0.0.2", "127.0.0.2"),
    ("::ffff:192.168.1.20", "192.168.1.20"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1::/56"),
    ("2001:db8:1:ff:bbbb::2", "2001:db8:1::/56"),
    ("2001:db8:1:100::1", "2001:db8:1:100::/56"),
])
def test_a_clients_history_is_its_ipv4_address_or_its_ipv6_56(address: str,
                                                                 network: str) -> None:
    assert client_network(address) == network


class Turns:
    """Clients asking a gate for a turn, each in a thread: the order of those that got
    one (each leaves at once), and who was told to come back."""

    def __init__(self, gate: FairGate) -> None:
        self.gate = gate
        self.order: list[str] = []
        self.refused: list[str] = []
        self._threads: list[threading.Thread] = []

    def ask(self, address: str, network: str | None = None) -> None:
        """Returns once `address` waits (or has its answer)."""
        thread = threading.Thread(target=self._turn, args=(address, network))
        thread.start()
        self._threads.append(thread)
        wait_until(f"{address} waiting or answered", lambda: not thread.is_alive() or any(
            waiter.client == client_key(address) for waiter in self.gate._waiters), 5.0,
            every=0.01)

    def _turn(self, address: str, network: str | None) -> None:
        client = client_key(address)
        if self.gate.enter(client, network or client_network(address)):
            self.order.append(address)
            self.gate.leave(client)
        else:
            self.refused.append(address)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(10.0)


def test_a_guesser_rotating_over_ipv6_64s_cannot_keep_out_a_fresh_networks_first_check(
        ) -> None:
    """Each /64 is a client of its own; its /56 keeps one history, so from its second
    address on, every guess ranks below a first attempt from elsewhere."""
    gate = FairGate(slots=1, waiting=2, patience=5.0)
    guesses = [f"2001:db8:0:{n:x}::1" for n in range(1, 5)]
    owner = "2001:db8:ffff:1::10"
    turns = Turns(gate)
    assert gate.enter(client_key(guesses[0]), client_network(guesses[0]))
    turns.ask(guesses[1])
    turns.ask(guesses[2])

    assert not gate.enter(client_key(guesses[3]), client_network(guesses[3]))
    turns.ask(owner)
    gate.leave(client_key(guesses[0]))
    turns.join()

    assert turns.order == [owner, guesses[1]] and turns.refused == [guesses[2]]


def test_a_network_that_passed_a_check_goes_before_a_fresh_one() -> None:
    clock = FakeClock(1000.0)
    gate = FairGate(slots=1, waiting=2, patience=5.0, clock=clock)
    prometheus, fresh = "127.0.0.3", "127.0.0.9"
    assert gate.enter(prometheus)
    gate.leave(prometheus)
    gate.trust(prometheus)
    clock.advance(3600.0)  # long after: its attempt no longer counts against it
    assert gate.enter("busy")
    turns = Turns(gate)
    turns.ask(fresh)
    turns.ask(prometheus)
    gate.leave("busy")
    turns.join()

    assert turns.order == [prometheus, fresh]


def test_a_second_attempt_ranks_below_a_first_until_the_memory_passes() -> None:
    clock = FakeClock(1000.0)
    gate = FairGate(slots=1, waiting=1, patience=5.0, memory=900.0, clock=clock)
    assert gate.enter("guesser") and not gate.enter("guesser")
    gate.leave("guesser")
    assert gate.enter("busy")
    turns = Turns(gate)
    turns.ask("guesser")
    turns.ask("first-timer")  # takes the guesser's place
    clock.advance(901.0)
    turns.ask("guesser")  # forgotten: a first attempt again, but it came later
    gate.leave("busy")
    turns.join()

    assert turns.order == ["first-timer"] and turns.refused == ["guesser", "guesser"]


class SteppingClock:
    """Each reading 0.1 s after the one before: a gate's wait ends by this clock (its real
    waits between readings are the remaining patience, a fraction of a second)."""

    def __init__(self) -> None:
        self.readings = [1000.0]

    def __call__(self) -> float:
        self.readings.append(self.readings[-1] + 0.1)
        return self.readings[-1]


def test_a_wait_ends_after_the_patience() -> None:
    clock = SteppingClock()
    gate = FairGate(slots=1, waiting=2, patience=0.25, clock=clock)
    assert gate.enter("slow")
    before = len(clock.readings)

    assert not gate.enter("other")

    waited = clock.readings[before:]  # what the gate read while it held "other"
    assert 0.25 <= waited[-1] - waited[0] <= 0.25 + 2 * 0.1 + 1e-9  # its patience, by the clock
    assert gate._waiters == [] and not gate.enter("slow")  # "slow" still holds the turn


def test_throttle_lets_one_line_per_key_and_window_through_and_counts_the_rest() -> None:
    clock = FakeClock(1000.0)
    throttle = LogThrottle(window=10.0, lines=3, clock=clock)

    first = [throttle.admit("a") for _ in range(5)]
    others = [throttle.admit(key) for key in ("b", "c", "d")]
    clock.advance(10.0)
    later = throttle.admit("a")

    assert first == [0, None, None, None, None]
    assert others == [4, 0, None]  # the window's budget of 3 lines is spent
    assert later == 1


def _logged(log_call: Callable[[Any], None]) -> list[str]:
    stream = io.StringIO()
    log = configure_logging("info", "logfmt", SecretRedactor(), stream)
    log_call(log)
    return stream.getvalue().splitlines()


def test_values_are_cut_after_the_redactor_has_seen_them() -> None:
    redactor = SecretRedactor()
    secret = "s3cr3t-refresh-token"
    redactor.add(secret)
    stream = io.StringIO()
    log = configure_logging("info", "logfmt", redactor, stream)

    log.warning("host_refused", host="h" * 190 + secret + "x" * 5000, problem="p" * 900)

    line = stream.getvalue()
    assert secret[:10] not in line
    assert "…[cut " in line and len(line) < 1400
    assert "p" * 900 in line  # the exporter's own explanations keep up to 1,000 characters


def test_a_library_traceback_becomes_one_line() -> None:
    def fail(_log: Any) -> None:
        try:
            _ = 1 / 0
        except ZeroDivisionError:
            logging.getLogger("waitress").exception("Exception while serving /x")

    lines = _logged(fail)

    assert len(lines) == 1
    assert "event=library_error" in lines[0] and "error=ZeroDivisionError" in lines[0]
    assert "at=test_lan_edge.py:" in lines[0]


def test_an_unexpected_error_in_an_app_is_one_line_and_a_plain_500() -> None:
    stream = io.StringIO()
    log = configure_logging("info", "logfmt", SecretRedactor(), stream)
    started: list[str] = []

    def broken(environ: dict[str, Any], start_response: Callable[..., Any]
               ) -> Iterable[bytes]:
        environ["wsgi.errors"].write("a traceback bottle would print\n")
        raise KeyError("boom")

    body = contain_errors(broken, log)({"PATH_INFO": "/x"},
                                       lambda status, *_: started.append(status))

    assert started == ["500 Internal Server Error"]
    assert list(body) == [b"500 Internal Server Error\n"]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "event=web_error path=/x error=KeyError at=" in lines[0]


def test_token_calls_are_budgeted_per_client_and_in_total() -> None:
    clock = FakeClock(1000.0)
    budget = TokenCallLimit(per_client=2, total=3, window=60.0, clock=clock)

    first = [budget.take("a") for _ in range(3)]
    other = [budget.take("b") for _ in range(2)]
    clock.advance(30.0)
    waiting = budget.wait("c")
    clock.advance(30.0)

    assert first == [0.0, 0.0, 60.0]  # a's own two, then a waits for its first to age
    assert other == [0.0, 60.0]  # b's first, then the total of three is spent
    assert waiting == 30.0
    assert budget.take("c") == 0.0


def test_a_clients_new_states_drop_only_its_own_and_a_full_table_refuses() -> None:
    clock = FakeClock(1000.0)
    states = PendingStates(clock, lifetime=600.0, capacity=6, per_client=2)
    owners = states.issue("http://owner/auth/callback", "owner")
    flood = [states.issue("http://a/auth/callback", "attacker") for _ in range(50)]
    others = [states.issue("http://x/auth/callback", f"other-{n}") for n in range(3)]

    with pytest.raises(TooManyPending):
        states.issue("http://y/auth/callback", "one-more")
    assert states.redeem(owners, owners) == "http://owner/auth/callback"
    assert states.redeem(flood[0], flood[0]) is StateProblem.UNKNOWN  # its own, dropped
    assert states.redeem(flood[-1], flood[-1]) == "http://a/auth/callback"
    assert len(others) == 3
    clock.current += 1201.0  # expired ones leave after twice the lifetime
    assert states.issue("http://y/auth/callback", "one-more")


def test_bottles_traceback_for_a_failing_page_is_not_printed(
    capfd: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    log = configure_logging("info", "logfmt", SecretRedactor(), stream)
    app = bottle.Bottle(catchall=True)

    @app.route("/fails")
    def fails() -> str:
        raise ValueError("a page's bug")

    started: list[str] = []
    environ = {"PATH_INFO": "/fails", "REQUEST_METHOD": "GET", "SERVER_NAME": "x",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr}

    body = b"".join(contain_errors(app, log)(environ, lambda status, *_: started.append(status)))

    printed = capfd.readouterr()
    assert started == ["500 Internal Server Error"] and body
    assert "Traceback" not in printed.out + printed.err



def test_the_patience_stretches_to_three_turns_where_a_turn_takes_longer() -> None:
    clock = FakeClock(1000.0)
    gate = FairGate(slots=1, waiting=2, patience=2.0, clock=clock)
    for took in (0.3, 0.2, 0.3):  # a quick machine: the configured patience holds
        assert gate.enter("prometheus")
        clock.advance(took)
        gate.leave("prometheus")
    assert gate.current_patience() == 2.0

    for _ in range(20):  # then each check takes 2 s: a Raspberry Pi, or a machine under load
        assert gate.enter("prometheus")
        clock.advance(2.0)
        gate.leave("prometheus")

    assert gate.current_patience() == pytest.approx(6.0, rel=0.01)
