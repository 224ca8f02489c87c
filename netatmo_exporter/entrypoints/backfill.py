"""`netatmo-exporter backfill`: Netatmo's stored history as a file Prometheus or
VictoriaMetrics can import, or written to a receiver of Prometheus remote write
(`--remote-write URL`), under the live exporter's family names and labels.

Same flags and environment as the service. While the service runs, access tokens come
through its control socket (it alone renews the authorization); otherwise from the token
file under the service's rules (renewed, persisted before use). While the service runs, each
call is also booked in the service's budget for the account. Stopped at any point, the
same command continues from its last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from netatmo_exporter.adapters.history.output import check_labels
from netatmo_exporter.adapters.history.progress import Progress
from netatmo_exporter.adapters.history.remote_sink import RemoteWriteSink
from netatmo_exporter.adapters.history.remote_write import RemoteWriteReceiver, shown_url
from netatmo_exporter.adapters.history.spool import Spool, work_dir_for
from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.system.clock import ScaledClock, SystemClock
from netatmo_exporter.adapters.system.control_client import (
    ServiceBudget,
    ServiceTokens,
    service_listening,
)
from netatmo_exporter.adapters.system.file_owner import foreign_in_shared_folder
from netatmo_exporter.adapters.system.logging import SecretRedactor, configure_logging
from netatmo_exporter.adapters.system.token_file import FileTokenStore
from netatmo_exporter.domain.authorization.scopes import (
    HOMECOACH_SCOPE,
    STATIONS_SCOPE,
    THERMOSTAT_SCOPE,
)
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.call_policy import BACKFILL_MAX_HOURLY_SHARE, Stopped
from netatmo_exporter.domain.energy.model import HomeSetup
from netatmo_exporter.domain.errors import MissingScope, NetatmoError
from netatmo_exporter.domain.history.backfill import Backfill, Calls
from netatmo_exporter.domain.history.calls import (
    DEFAULT_HOURLY_SHARE,
    USER_PER_HOUR,
    BudgetedCalls,
)
from netatmo_exporter.domain.history.plan import (
    FORMATS,
    HEAD_BLOCK,
    Cursors,
    HistoryError,
    OutputFormat,
    Plan,
    TimeRange,
    plan_history,
    resolve_range,
)
from netatmo_exporter.domain.history.when import WhenError, format_when, parse_when
from netatmo_exporter.domain.ports import AccessTokens, EventLog
from netatmo_exporter.domain.weather.model import Station, unique_stations
from netatmo_exporter.entrypoints.bootstrap import remote_write_receiver
from netatmo_exporter.entrypoints.config import (
    EXIT_BAD_SETTING,
    Config,
    ConfigError,
    HistorySettings,
    build_parser,
    config_from,
    resolve,
)

PROG = "netatmo-exporter backfill"
PACKAGED_CONTROL_SOCKET = "/run/netatmo-exporter/control.sock"
"""Where the Debian package's service listens (its RuntimeDirectory)."""
REMOTE_WORK_DIR = "netatmo-backfill-remote-write.partial"
"""The work directory of `--remote-write`, in the current directory."""
PACKAGED_STATE_DIRECTORIES = (Path("/var/lib/netatmo-exporter"),
                              Path("/var/lib/private/netatmo-exporter"))
"""The Debian package's state, which `apt purge` deletes (debian/netatmo-exporter.postrm)."""
PROMTOOL_BLOCK_DURATION = "744h"
"""promtool's `--max-block-duration` for a backfill file: 31 days, Prometheus' own largest
block (promtool 2.42 rounds it down to its range of 486 h). promtool reads the whole file
once per block it writes: with its default of 2 hours, a year is 4,380 readings of the
file (docs/history.md has the figures)."""
HISTORY_DIRECTORY = "/var/tmp/netatmo-history"  # noqa: S108 - named in a message only
"""Where docs/history.md has the Debian service's user write its history files."""


def build_backfill_parser() -> argparse.ArgumentParser:
    parser = build_parser(PROG)
    parser.description = (
        "Write the readings Netatmo stored (every ~5 minutes, for years) as a file for "
        "promtool (OpenMetrics) or VictoriaMetrics (Prometheus text), under the live "
        "exporter's names and labels. Takes the service's flags and environment; while the "
        "service runs, it gets access tokens through the service's control socket. "
        "Stopped, the same command continues where it stopped. With --remote-write, the "
        "readings go to a remote write receiver (Prometheus with "
        "--web.enable-remote-write-receiver and an out-of-order window, VictoriaMetrics) "
        "instead of a file, with the --history.* labels and credentials. "
        "See docs/history.md.")
    group = parser.add_argument_group("backfill")
    group.add_argument("--from", dest="start", required=True, metavar="WHEN",
                       help="first reading: RFC 3339 date or date-time (2025-01-01, "
                            "2025-01-01T06:00:00Z; UTC without an offset) or a Go duration "
                            "meaning that long ago (720h)")
    group.add_argument("--to", dest="stop", default="", metavar="WHEN",
                       help="last reading (default: 3 hours ago, where Prometheus' head "
                            "block begins; now with --remote-write)")
    target = group.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", metavar="FILE",
                        help="file to write (- for standard output); written only when "
                             "complete, its work directory FILE.partial beside it")
    target.add_argument("--remote-write", metavar="URL",
                        help="write to this receiver of Prometheus remote write instead "
                             "(http://HOST:9090/api/v1/write, http://HOST:8428/api/v1/write), "
                             f"page by page; the work directory is {REMOTE_WORK_DIR} in the "
                             "current directory")
    group.add_argument("--format", choices=FORMATS, default=None,
                       help="openmetrics (default; promtool tsdb create-blocks-from "
                            "openmetrics) or prometheus (text with millisecond timestamps, "
                            "VictoriaMetrics /api/v1/import/prometheus)")
    group.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                       help="label added to every series, repeatable: give the job and "
                            "instance Prometheus gives the live series (with --remote-write, "
                            "added to the --history.label ones, replacing one of the same "
                            "name)")
    group.add_argument("--hourly-calls", type=int, default=DEFAULT_HOURLY_SHARE, metavar="N",
                       help=f"the backfill's share of Netatmo's {USER_PER_HOUR} calls per "
                            f"hour and user, 1 to {BACKFILL_MAX_HOURLY_SHARE} (default: "
                            f"{DEFAULT_HOURLY_SHARE}, leaving the service the rest)")
    return parser


@dataclass(frozen=True)
class BackfillRequest:
    config: Config
    start: float
    stop: float | None
    output: str
    format: OutputFormat
    labels: tuple[tuple[str, str], ...]
    remote_write: HistorySettings | None
    """The receiver, its credentials and (in `labels`) its labels; None for a file."""
    hourly_calls: int
    identity: dict[str, Any]


def run_backfill(argv: Sequence[str], env: dict[str, str], stdout: Any = None,
                 stderr: TextIO | None = None, budget_speedup: float = 1.0) -> int:
    """`budget_speedup` shortens the budget's windows (the hour, the 10 s) that many times,
    for a benchmark against a simulator whose rate limits are sped up alike."""
    stderr = stderr or sys.stderr
    stdout = stdout or sys.stdout.buffer
    clock = SystemClock()
    try:
        request = _request(argv, env, clock.now())
        return _Run(request, clock, stdout, stderr, budget_speedup).execute()
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=stderr)
        return EXIT_BAD_SETTING
    except (HistoryError, WhenError) as exc:
        print(f"{PROG}: {exc}", file=stderr)
        return 1


def _request(argv: Sequence[str], env: dict[str, str], now: float) -> BackfillRequest:
    args = build_backfill_parser().parse_args(list(argv))
    values = dict(resolve(args, env))
    if args.remote_write is not None:
        url = args.remote_write.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise HistoryError(f"--remote-write {shown_url(url)!r} is not an http(s) URL")
        if args.format is not None:
            raise HistoryError("--format is for --output; --remote-write sends the readings "
                               "as remote write")
        values["history_url"] = url  # its labels and credentials: the --history.* settings
    config = config_from(values, env, require_credentials=False)
    try:
        labels = check_labels(args.label)
    except ValueError as exc:
        raise HistoryError(str(exc)) from None
    remote = config.history if args.remote_write is not None else None
    output_format: OutputFormat = args.format or "openmetrics"
    if remote is not None:
        given = dict(labels)
        labels = (*((n, v) for n, v in remote.labels if n not in given), *labels)
    if not 1 <= args.hourly_calls <= BACKFILL_MAX_HOURLY_SHARE:
        raise HistoryError(
            f"--hourly-calls {args.hourly_calls}: give 1 to {BACKFILL_MAX_HOURLY_SHARE}; the "
            f"running service keeps at least {USER_PER_HOUR - BACKFILL_MAX_HOURLY_SHARE} of "
            f"Netatmo's {USER_PER_HOUR} calls an hour")
    start = parse_when(args.start, now, "--from")
    stop = parse_when(args.stop, now, "--to") if args.stop.strip() else None
    identity = {"from": args.start, "to": args.stop, "format": output_format,
                "labels": [list(pair) for pair in labels], "scope": config.scope,
                "api_url": config.api_url}
    if remote is not None:
        identity["format"] = "remote-write"
        identity["remote_write"] = shown_url(remote.url)
    return BackfillRequest(config, start, stop, args.output or "", output_format, labels, remote,
                   args.hourly_calls, identity)


class _Run:
    def __init__(self, request: BackfillRequest, clock: SystemClock, stdout: Any, stderr: TextIO,
                 budget_speedup: float) -> None:
        self._request = request
        self._clock = clock
        self._speedup = budget_speedup
        self._stdout = stdout
        self._stderr = stderr
        self._stop = threading.Event()
        self._signal = 0
        self._client: NetatmoClient | None = None
        self._progress: Progress | None = None
        self._receiver: RemoteWriteReceiver | None = None

    def say(self, text: str) -> None:
        print(text, file=self._stderr, flush=True)

    def execute(self) -> int:
        self._install_signals()
        request = self._request
        config = request.config
        spool = self._sink()
        resumed = spool.load(request.identity)
        fresh = None
        if resumed is None:
            now = self._clock.now()
            if request.remote_write is not None:
                # Only promtool's blocks stop at the head block: a receiver takes the present.
                fresh = resolve_range(request.start, now if request.stop is None
                                      else request.stop, now, "prometheus")
            else:
                fresh = resolve_range(request.start, now - HEAD_BLOCK if request.stop is None
                                      else request.stop, now, request.format,
                                      request.stop is None)
        self._client = client = NetatmoClient(config.api_url, config.client_id,
                                              config.client_secret, self._clock)
        redactor = SecretRedactor()
        redactor.add(config.client_secret)
        log = configure_logging("warn", config.log_format, redactor, self._stderr)
        client.report_to(log)  # a name's broken text replaced: said on stderr
        started = time.monotonic()
        try:
            tokens, where = self._tokens(config, client, log)
            calls = BudgetedCalls(
                tokens, request.hourly_calls,
                ScaledClock(self._speedup) if self._speedup != 1.0 else self._clock,
                self._wait, self._waiting,
                ServiceBudget(tokens.path) if isinstance(tokens, ServiceTokens) else None)
            self.say(f"authorization: {where}")
            if fresh is not None:
                span, notes = fresh
                for note in notes:
                    self.say(note)
                plan = self._discover(calls, config)
                if not plan.sources:
                    raise HistoryError("the account has no device whose history can be read"
                                       + "".join(f"; {note}" for note in plan.notes))
                cursors = Cursors.start(plan, span, calls.recent())
                spool.start(request.identity, plan, span, cursors)
            else:
                assert resumed is not None
                plan, span, cursors = resumed
                calls.carry_over(cursors.recent_calls)
                spool.resume(request.identity, plan, span)
                self.say(f"continuing the backfill in {spool.directory} "
                         f"({cursors.calls} calls done before)")
            samples = self._fetch(plan, span, cursors, calls, spool)
        except Stopped:
            kept = (f"; the work is kept in {spool.directory}: run the same command again "
                    "to continue") if spool.holds_work else ""
            self.say(f"stopped after {self._calls()} calls{kept}")
            return 128 + (self._signal or signal.SIGINT)
        except (NetatmoError, HistoryError) as exc:
            kept = (f" (the work so far is kept in {spool.directory}: the same command "
                    "continues it)") if spool.holds_work else ""
            self.say(f"{PROG}: {exc}{kept}")
            return 1
        finally:
            client.close()
            if self._receiver is not None:
                self._receiver.close()
        self._summary(plan, span, cursors, samples, time.monotonic() - started)
        return 0

    def _sink(self) -> Spool | RemoteWriteSink:
        request = self._request
        settings = request.remote_write
        if settings is None:
            _check_output(request.output)
            return Spool(work_dir_for(request.output), request.format, request.labels)
        self._receiver = receiver = remote_write_receiver(
            dataclasses.replace(settings, labels=request.labels))
        return RemoteWriteSink(Path(REMOTE_WORK_DIR), receiver, self._wait, self._waiting)

    def _fetch(self, plan: Plan, span: TimeRange, cursors: Cursors, calls: Calls,
               spool: Spool | RemoteWriteSink) -> int:
        """Every page still missing, then the output; returns the samples written."""
        assert self._client is not None
        for note in plan.notes:
            self.say(note)
        self.say(f"{_count(plan, 'module')} modules, {_count(plan, 'room')} rooms, "
                 f"{len(plan.series)} series from {format_when(span.begin)} to "
                 f"{format_when(span.end)}")
        self._progress = progress = Progress(self._stderr, span, cursors, self._clock,
                                             self._stderr.isatty())
        backfill = Backfill(plan, span, cursors, self._client, spool, calls, progress,
                            self._stop)
        try:
            backfill.run()
        finally:
            progress.finish()
            spool.close()
        if isinstance(spool, RemoteWriteSink):
            spool.remove()
            return spool.written
        return spool.assemble(plan, cursors, self._request.output, self._stdout)

    def _tokens(self, config: Config, client: NetatmoClient, log: EventLog
                ) -> tuple[AccessTokens, str]:
        socket_path = config.control_socket or PACKAGED_CONTROL_SOCKET
        try:
            os.stat(os.path.dirname(socket_path) or ".")
        except PermissionError:
            raise HistoryError(
                f"cannot reach {socket_path}: a service runs as another user; run the "
                "backfill as the service's user (docs/history.md shows the command)"
            ) from None
        except FileNotFoundError:
            pass
        problem = foreign_in_shared_folder(socket_path)
        if problem:
            raise HistoryError(f"the control socket {socket_path} {problem}, in a folder "
                               "others may write: this run will not take tokens from it; "
                               "give the service's --control-socket")
        if service_listening(socket_path):
            return ServiceTokens(socket_path), (f"through the running exporter ({socket_path}), "
                                                "whose budget counts the backfill's calls")
        missing = [name for name, value in (("--client-id (NETATMO_CLIENT_ID)", config.client_id),
                                            ("--client-secret (NETATMO_CLIENT_SECRET)",
                                             config.client_secret),
                                            ("--token-file (NETATMO_EXPORTER_TOKEN_FILE)",
                                             config.token_file)) if not value]
        if missing:
            raise ConfigError(f"no exporter answers on {socket_path} and {missing[0]} is not "
                              "set: give the service's settings, or start the service")
        manager = TokenManager(client, FileTokenStore(config.token_file), self._clock, log)
        manager.load()
        if not manager.authorized:
            raise HistoryError(f"not authorized yet: {config.token_file} holds no token; "
                               "authorize the exporter first (its status page, or "
                               "netatmo-exporter login)")
        return manager, f"token file {config.token_file} (no exporter answers on {socket_path})"

    def _discover(self, calls: Calls, config: Config) -> Plan:
        assert self._client is not None
        client = self._client
        stations: list[Station] = []
        homes: tuple[HomeSetup, ...] = ()
        if STATIONS_SCOPE in config.scopes:
            stations += self._listing(calls, STATIONS_SCOPE, lambda token: client.fetch_stations(
                token, config.favorites))
        if HOMECOACH_SCOPE in config.scopes:
            stations += self._listing(calls, HOMECOACH_SCOPE,
                                      lambda token: client.fetch_homecoaches(token))
        if THERMOSTAT_SCOPE in config.scopes:
            homes = tuple(self._listing(calls, THERMOSTAT_SCOPE, client.fetch_homes))
        return plan_history(unique_stations(stations), homes)

    def _listing(self, calls: Calls, scope: str, fetch: Any) -> list[Any]:
        try:
            return list(calls.call(fetch))
        except MissingScope:
            self.say(f"skipped the devices of scope {scope}: the authorization lacks it")
            return []

    def _wait(self, seconds: float) -> bool:
        return self._stop.wait(seconds / self._speedup)

    def _waiting(self, seconds: float, why: str) -> None:
        if self._progress is not None:
            self._progress.waiting(seconds, why)
        elif seconds >= 1.0:
            self.say(f"waiting {seconds:.0f}s for {why}")

    def _install_signals(self) -> None:
        def on_signal(signum: int, _frame: object) -> None:
            self._signal = signum
            self._stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def _calls(self) -> int:
        if self._client is None:
            return 0
        return sum(count for (endpoint, _), count in self._client.request_counts().items()
                   if endpoint != "token")

    def _summary(self, plan: Plan, span: TimeRange, cursors: Cursors, samples: int,
                 took: float) -> None:
        request = self._request
        series = sum(1 for s in plan.series if cursors.spooled.get(s.key, 0) > 0)
        where = "standard output" if request.output == "-" else request.output
        if request.remote_write is not None:
            where = (f"{shown_url(request.remote_write.url)} (remote write; "
                     f"{sum(cursors.spooled.values())} samples in all)")
        self.say(f"done: {_count(plan, 'module')} modules, {_count(plan, 'room')} rooms, "
                 f"{series} series, {samples} samples, {self._calls()} calls in this run "
                 f"({cursors.calls} pages in all), {took:.0f}s; written to {where}")
        for key, why in cursors.skipped.items():
            title = next((s.title for s in plan.sources if s.key == key), key)
            self.say(f"without {title}: Netatmo refused its history ({why})")
        if request.output == "-" or request.remote_write is not None:
            return
        path = os.path.abspath(request.output)
        if request.format == "openmetrics":
            days = int((self._clock.now() - span.begin) // 86400) + 2
            blocks = blocks_directory(path)
            self.say(f"next: {promtool_command(path, blocks)}\n"
                     f"      then move {shlex.quote(blocks)}/* into Prometheus' data directory "
                     "and restart it; it must keep\n"
                     f"      --storage.tsdb.retention.time={days}d or more, or it deletes "
                     "them (docs/history.md)")
        else:
            self.say(f"next: curl --data-binary @{shlex.quote(path)} "
                     "http://localhost:8428/api/v1/import/prometheus")


def blocks_directory(output: str) -> str:
    """Where promtool writes the blocks of `output`: beside it, not in the current
    directory (which may be a clone of this repository)."""
    return os.path.splitext(os.path.abspath(output))[0] + "-blocks"


def promtool_command(output: str, blocks: str) -> str:
    return (f"promtool tsdb create-blocks-from openmetrics "
            f"--max-block-duration={PROMTOOL_BLOCK_DURATION} {shlex.quote(output)} "
            f"{shlex.quote(blocks)}")


def _count(plan: Plan, kind: str) -> int:
    return sum(1 for source in plan.sources if source.kind == kind)


def _check_output(output: str) -> None:
    if output == "-":
        return
    path = Path(output)
    purged = next((d for d in PACKAGED_STATE_DIRECTORIES
                   if path.absolute().is_relative_to(d)), None)
    if purged is not None:
        raise HistoryError(f"--output {output}: {purged} is the Debian package's state, which "
                           f"apt purge deletes; write the history elsewhere, such as "
                           f"{HISTORY_DIRECTORY}/ (docs/history.md)")
    if path.is_dir():
        raise HistoryError(f"--output {output} is a directory; give a file path")
    directory = path.parent
    if not directory.is_dir():
        raise HistoryError(f"--output {output}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        why = ("is on a read-only file system" if os.statvfs(directory).f_flag & os.ST_RDONLY
               else "is not writable by this user")
        raise HistoryError(f"--output {output}: directory {directory} {why}")
    if path.exists() and not os.access(path, os.W_OK):
        raise HistoryError(f"--output {output} cannot be replaced by this user")
