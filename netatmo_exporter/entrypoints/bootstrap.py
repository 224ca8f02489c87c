"""The composition root: builds the running exporter from a validated config."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry

from netatmo_exporter import __version__
from netatmo_exporter.adapters.lan.basic_auth import BasicAuth
from netatmo_exporter.adapters.lan.refusals import RefusalCollector, RefusalCounts
from netatmo_exporter.adapters.metrics.api_collector import ALERTED_REQUESTS, ApiCounterCollector
from netatmo_exporter.adapters.metrics.budget_collector import BudgetCollector
from netatmo_exporter.adapters.metrics.energy_collector import (
    ALERTED_ENERGY_REQUESTS,
    EnergyCollector,
)
from netatmo_exporter.adapters.metrics.scrape_collector import ScrapeCollector
from netatmo_exporter.adapters.metrics.weather_collector import WeatherCollector
from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.pages.oauth import OAuthPages
from netatmo_exporter.adapters.pages.oauth_flow import PendingStates
from netatmo_exporter.adapters.pages.service import ServicePages
from netatmo_exporter.adapters.pages.status import StatusPage
from netatmo_exporter.adapters.pages.templates import Templates
from netatmo_exporter.adapters.system.call_journal import FileCallJournal, calls_path
from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.adapters.system.control_socket import ControlSocketServer
from netatmo_exporter.adapters.system.logging import SecretRedactor, configure_logging
from netatmo_exporter.adapters.system.systemd_notify import notify
from netatmo_exporter.adapters.system.token_file import FileTokenStore, RedactingTokenStore
from netatmo_exporter.adapters.web.app import build_web_app
from netatmo_exporter.adapters.web.form_guard import FormGuard
from netatmo_exporter.adapters.web.host_names import own_names, search_domains
from netatmo_exporter.adapters.web.host_policy import HostPolicy
from netatmo_exporter.adapters.web.http_policy import http_url
from netatmo_exporter.adapters.web.http_server import (
    CachedMetricsApp,
    HTTPServer,
    ServerLimits,
    dispatch,
    make_server,
)
from netatmo_exporter.adapters.web.site_address import SiteAddress
from netatmo_exporter.adapters.web.wsgi import WSGIApp, with_security_headers
from netatmo_exporter.build_info import build_commit
from netatmo_exporter.domain.authorization.renewal import TokenRenewal
from netatmo_exporter.domain.authorization.scopes import THERMOSTAT_SCOPE
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.call_policy import (
    BACKFILL,
    BudgetWaits,
    BudgetWaitState,
    CallBudget,
    PollLoop,
    event_wait,
)
from netatmo_exporter.domain.energy.model import HomeSetup
from netatmo_exporter.domain.energy.poller import EnergyPoller
from netatmo_exporter.domain.errors import TokenFileError
from netatmo_exporter.domain.ports import Clock, EventLog, TokenStore
from netatmo_exporter.domain.read_model import ReadService, service_reader
from netatmo_exporter.domain.weather.model import Station
from netatmo_exporter.domain.weather.refresher import Refresher, RefreshSettings
from netatmo_exporter.entrypoints.config import Config, HistorySettings

if TYPE_CHECKING:
    # The history follower's modules load only when it is configured.
    from netatmo_exporter.adapters.history.remote_write import RemoteWriteReceiver
    from netatmo_exporter.domain.history.follower import HistoryFollower, HistoryState
    from netatmo_exporter.domain.history.remote_write import HistoryReceiver

STOP_WAIT = 5.0
"""How long a stop waits for the loops' Netatmo calls in flight (so that a renewal whose
answer is arriving is written first); then they are abandoned and the process ends
without them, well within systemd's TimeoutStopSec (30 s)."""
FINAL_FLUSH_WAIT = 0.5
"""The least the final flush waits for a renewal in flight elsewhere (the control socket)."""
LOOPS = ("refresher", "renewal", "energy", "history")
SWITCH_INTERVAL = 0.001
"""How long a thread holds the GIL while another waits for it (Python's default: 5 ms).
waitress's loop and its app threads hand each scrape over several times; at 5 ms a hand-off
that waits on a busy thread was the p99 tail under 8 kept-alive scrapers: 1 ms halves the
p99 at the same throughput (bench/benchmark.py --part tail, docs/benchmark.md)."""


@dataclass
class Application:
    config: Config
    log: EventLog
    tokens: TokenManager
    refresher: Refresher
    renewal: TokenRenewal
    client: NetatmoClient
    server: HTTPServer
    registry: CollectorRegistry
    redactor: SecretRedactor
    control: ControlSocketServer | None = None
    energy: EnergyPoller | None = None
    history: HistoryFollower | None = None
    remote_write: RemoteWriteReceiver | None = None
    journal: FileCallJournal | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    abandoned: tuple[str, ...] = ()
    """The loops still waiting on the network when `stop` returned: the process must end
    without them (`os._exit`), as they may wake up at any time."""

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        host = str(host)
        if host in ("::", "0.0.0.0"):
            host = "127.0.0.1"
        return http_url(host, port)

    def start(self) -> None:
        self.tokens.load()
        self._threads.append(self.server.start())
        if self.control is not None:
            self.control.start()
        loops = [("refresher", self.refresher.run), ("renewal", self.renewal.run)]
        if self.energy is not None:
            loops.append(("energy", self.energy.run))
        if self.history is not None:
            history = self.history
            loops.append(("history", lambda: history.run(lambda: self.tokens.authorized)))
        for name, run in loops:
            thread = threading.Thread(target=run, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        address, interfaces = listening_on(self.server.socket)
        self.log.info("listening", address=address, interfaces=interfaces,
                      token_file=self.config.token_file,
                      refresh_interval=self.config.refresh_interval,
                      refresh_mode=self.config.refresh_mode)
        web_config = self.config.web_config
        if web_config is not None and web_config.basic_auth_users:
            self.log.info("basic_auth_enabled", users=len(web_config.basic_auth_users),
                          web_config=web_config.path)

    def run_until_signalled(self, env: Mapping[str, str]) -> int:
        """Serve until SIGTERM or SIGINT, then stop serving and write the token; the exit
        status. Under systemd (Type=notify) the start counts as done once the socket
        listens."""
        stopping = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            self.log.info("signal_received", signal=signal.Signals(signum).name)
            stopping.set()

        # Python's default SIGTERM action ends the process without running any Python code.
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.start()
        notify("READY=1", env)
        while not stopping.wait(1.0):
            pass
        notify("STOPPING=1", env)
        return 0 if self.stop() else 1

    def stop(self) -> bool:
        """Stop serving and every loop, write the token if the file lacks it; False if that
        write failed. Never waits on Netatmo longer than `STOP_WAIT`."""
        deadline = time.monotonic() + STOP_WAIT
        for loop in self._loops():
            loop.stop()
        self.server.shutdown()
        # A renewal in flight writes its rotated token before its loop ends: let it.
        # A write to the history receiver in flight is sent again after the restart (its
        # checkpoint is saved only once the receiver took it).
        for thread in self._threads:
            if thread.name in LOOPS:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        ok = True
        try:
            self.tokens.flush(wait=max(FINAL_FLUSH_WAIT, deadline - time.monotonic()))
        except TokenFileError as exc:
            self.log.error("final_flush_failed", problem=str(exc))
            ok = False
        if self.control is not None:
            self.control.stop()
        self.abandoned = tuple(thread.name for thread in self._threads
                               if thread.name in LOOPS and thread.is_alive())
        if not self.abandoned:  # else a call hangs in them: the process ends it
            self.client.close()
            if self.journal is not None:
                self.journal.close()
            if self.remote_write is not None:
                self.remote_write.close()
        self.log.info("stopped", **({"abandoned": ",".join(self.abandoned)}
                                    if self.abandoned else {}))
        return ok

    def _loops(self) -> list[PollLoop]:
        optional = (self.energy, self.history)
        return [self.refresher.loop, self.renewal.loop,
                *(each.loop for each in optional if each is not None)]


def build_app(
    config: Config,
    *,
    store: TokenStore | None = None,
    clock: Clock | None = None,
    log_stream: TextIO | None = None,
    client: NetatmoClient | None = None,
    server_limits: ServerLimits | None = None,
    wait: Callable[[threading.Event, float], object] | None = None,
    history_receiver: HistoryReceiver | None = None,
) -> Application:
    """`wait` replaces the pollers' `event.wait(timeout)`, for a clock that runs faster
    than the wall clock (the freshness benchmark)."""
    clock = clock or SystemClock()
    redactor = SecretRedactor()
    redactor.add(config.client_secret)
    log = configure_logging(config.log_level, config.log_format, redactor, log_stream)
    client = client or NetatmoClient(config.api_url, config.client_id, config.client_secret,
                                     clock)
    client.report_to(log)
    wait = wait or event_wait
    tokens = TokenManager(client, RedactingTokenStore(store or FileTokenStore(config.token_file),
                                                      redactor), clock, log)
    journal = _call_journal(config, log)
    # Netatmo's limits are per user: one budget for every poller, across restarts too.
    budget = CallBudget(journal=journal)
    if journal is not None:
        _book_earlier_calls(budget, journal.recent(clock.now()), log)
    waits = BudgetWaits(log)
    refresher = Refresher(
        tokens, client,
        RefreshSettings(config.refresh_interval, config.scopes, config.favorites,
                        config.refresh_mode),
        clock, log, wait, budget, waits)
    renewal = TokenRenewal(tokens, clock, log, config.refresh_interval, wait)
    registry = CollectorRegistry(auto_describe=False)
    energy = None
    if THERMOSTAT_SCOPE in config.scopes:
        energy = EnergyPoller(tokens, client, config.refresh_interval, clock, log, wait=wait,
                              budget=budget, waits=waits)
    # Each scrape and each page reads the weather state, the token's facts and the Energy
    # state once, together.
    read = service_reader(refresher.state, tokens.status, energy.state if energy else None)
    registry.register(ScrapeCollector(
        read, WeatherCollector(read, clock, config.age_stale),
        *([EnergyCollector(read)] if energy else []),
        ApiCounterCollector(read, client.request_counts,
                            ALERTED_REQUESTS + (ALERTED_ENERGY_REQUESTS if energy else ()))))
    history, remote_write = None, None
    if config.history is not None:
        if history_receiver is None:
            history_receiver = remote_write = remote_write_receiver(config.history)
        history = _history_follower(config, config.history, tokens, client, budget, refresher,
                                    energy, clock, log, wait, history_receiver)
    tokens.set_on_new_token(_each(refresher.loop.wake, renewal.loop.wake,
                                  *([energy.loop.wake] if energy else []),
                                  *([history.loop.wake] if history else [])))
    refusals = RefusalCounts()
    registry.register(RefusalCollector(refusals))
    if history is not None:
        from netatmo_exporter.adapters.metrics.history_collector import HistoryCollector

        registry.register(HistoryCollector(history.state, clock))
    metrics = CachedMetricsApp(
        registry, lambda: (refresher.state().generation, tokens.generation, int(clock.now()),
                           energy.state().generation if energy else 0,
                           history.state().generation if history else 0))
    web = _web_app(config, tokens, read, clock, log, redactor, refusals,
                   history.state if history else None, lambda: waits.state(clock.now()))
    app = dispatch({"metrics": metrics}, web)
    web_config = config.web_config
    if web_config is not None and web_config.basic_auth_users:
        app = BasicAuth(app, web_config.basic_auth_users, log, refusals)
    app = with_security_headers(app, web_config.headers if web_config is not None else ())
    server = make_server(config.host, config.port, app, server_limits, log, refusals)
    registry.register(BudgetCollector(lambda: budget.use(clock.now()),
                                      lambda: waits.state(clock.now())))
    control = (ControlSocketServer(config.control_socket, tokens.flush, log, tokens,
                                   lambda share: budget.take(BACKFILL, share, clock.now()))
               if config.control_socket else None)
    return Application(config, log, tokens, refresher, renewal, client, server, registry,
                       redactor, control, energy, history, remote_write, journal)


def _call_journal(config: Config, log: EventLog) -> FileCallJournal | None:
    """The budget's calls on disk beside the token file; none without a token file."""
    if not config.token_file:
        return None
    return FileCallJournal(calls_path(config.token_file), log)


def _book_earlier_calls(budget: CallBudget, calls: list[tuple[float, str]],
                        log: EventLog) -> None:
    """The calls an earlier life of the service made in the last hour, counted again."""
    callers: dict[str, list[float]] = {}
    for at, caller in calls:
        callers.setdefault(caller, []).append(at)
    for caller, times in callers.items():
        budget.book(caller, times)
    if calls:
        log.info("call_budget_restored", calls=len(calls),
                 callers=",".join(f"{caller}:{len(times)}" for caller, times in
                                  sorted(callers.items())))


def remote_write_receiver(settings: HistorySettings) -> RemoteWriteReceiver:
    """The receiver of the history settings (the follower's, `backfill --remote-write`'s)."""
    from netatmo_exporter.adapters.history.remote_write import RemoteWriteReceiver

    return RemoteWriteReceiver(settings.url, settings.labels, username=settings.username,
                               password_file=settings.password_file,
                               bearer_token_file=settings.bearer_token_file,
                               ca_file=settings.ca_file)


def _history_follower(config: Config, settings: HistorySettings, tokens: TokenManager,
                      client: NetatmoClient, budget: CallBudget, refresher: Refresher,
                      energy: EnergyPoller | None, clock: Clock, log: EventLog,
                      wait: Callable[[threading.Event, float], object],
                      receiver: HistoryReceiver) -> HistoryFollower:
    """The history follower (SPEC 13), planning from the live states only."""
    from netatmo_exporter.adapters.history.checkpoint import FileCheckpointStore, checkpoint_path
    from netatmo_exporter.domain.history.follower import HistoryFollower

    def stations() -> tuple[Station, ...] | None:
        snapshot = refresher.state().snapshot
        return None if snapshot is None else snapshot.stations

    def homes() -> tuple[HomeSetup, ...] | None:
        assert energy is not None
        snapshot = energy.state().snapshot
        return None if snapshot is None else tuple(home.setup for home in snapshot.homes)

    store = FileCheckpointStore(checkpoint_path(config.token_file), log)
    return HistoryFollower(tokens, client, receiver, store, clock, log,
                           lookback=settings.lookback, interval=settings.interval,
                           stations=stations, homes=homes if energy is not None else None,
                           budget=budget, wait=wait)


def _web_app(config: Config, tokens: TokenManager, read: ReadService,
             clock: Clock, log: EventLog, redactor: SecretRedactor, refusals: RefusalCounts,
             history: Callable[[], HistoryState] | None,
             budget_waits: Callable[[], BudgetWaitState]) -> WSGIApp:
    """The pages, each handed what it uses."""
    templates = Templates(__version__)
    host_policy = HostPolicy(urlsplit(config.external_url).netloc, config.allowed_hosts,
                             _own_names())
    address = SiteAddress(config.external_url, config.external_url_configured, host_policy)
    forms = FormGuard(address)
    status = StatusPage(templates, address, forms, read, clock,
                        scopes=config.scopes, age_stale=config.age_stale,
                        debug_handlers=config.debug_handlers,
                        host_names=host_policy.names,
                        basic_auth=bool(config.web_config and config.web_config.basic_auth_users),
                        history=history,
                        history_receiver=config.history.url if config.history else "",
                        history_interval=config.history.interval if config.history else 0.0,
                        budget_waits=budget_waits)
    oauth = OAuthPages(templates, address, forms, tokens, PendingStates(clock),
                       api_url=config.api_url, client_id=config.client_id,
                       scopes=config.scopes, register_secret=redactor.add, log=log,
                       refusals=refusals)
    service = ServicePages(read, clock, version=__version__, commit=build_commit())
    return build_web_app({**status.handlers(), **oauth.handlers(), **service.handlers()},
                         templates, host_policy, log, debug_handlers=config.debug_handlers)


def listening_on(sock: socket.socket) -> tuple[str, str]:
    """Where a socket is bound, as the log says it: the address (`http://[::]:9210`, not a
    loopback URL, when it is every interface) and which interfaces that means."""
    host, port = str(sock.getsockname()[0]), sock.getsockname()[1]
    address = http_url(host, port)
    if host == "::":
        v6only = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
        return address, "every IPv6 address" if v6only else "every IPv4 and IPv6 address"
    return address, "every IPv4 address" if host == "0.0.0.0" else "this address only"


def _each(*calls: Callable[[], None]) -> Callable[[], None]:
    def call() -> None:
        for each in calls:
            each()
    return call


def _own_names() -> tuple[str, ...]:
    """This machine's name, as a LAN browser may type it (`nas`, `nas.local`,
    `nas.fritz.box` under a DNS search domain)."""
    return own_names(socket.gethostname(), search_domains())

