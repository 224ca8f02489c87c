"""`netatmo-exporter demo`: the real exporter against the simulated Netatmo cloud."""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.adapters.system.token_file import FileTokenStore
from netatmo_exporter.domain.authorization.scopes import KNOWN_SCOPES
from netatmo_exporter.domain.authorization.token import Token
from netatmo_exporter.entrypoints.bootstrap import build_app
from netatmo_exporter.entrypoints.config import ConfigError, load_config
from netatmo_exporter.entrypoints.invocation import program_command

if TYPE_CHECKING:
    from netatmo_exporter.simulator import FakeNetatmoCloud

DEMO_SCOPES = KNOWN_SCOPES
DEMO_UPLOAD_PERIOD = 60.0
# The demo account's deliberate oddities (netatmo_exporter/simulator/accounts.py and
# energy.py), named at start so that nobody takes them for faults of the exporter.
SIMULATED_FAULTS = (
    'module "Cave" unreachable',
    'module "Grenier" stale (3 h old)',
    'rain gauge "Pluie" never paired',
    'module "Capteur expérimental" of an unknown type',
    'valve "Vanne bureau" and room "Bureau" unreachable',
    'home "Chalet" whose relay is offline: Netatmo gives no heating state '
    '(the home_status_failed warning in the log)',
)


def backfill_command(program: str, api_url: str, control_socket: Path, output: Path) -> str:
    """A backfill of the simulated account's last two days, through the demo's exporter,
    into `output` (outside the clone: a clone stays clean, and the Debian package built
    from it is not -dirty)."""
    return (f"{program} backfill --api-url {api_url} "
            f"--control-socket {shlex.quote(str(control_socket))} "
            f"--scope '{' '.join(DEMO_SCOPES)}' --from 48h --output {shlex.quote(str(output))}")


DEMO_PROMETHEUS_CONFIG = """global:
  scrape_interval: 15s
scrape_configs:
  - job_name: netatmo
    static_configs:
      - targets: ['{target}']
storage:
  tsdb:
    out_of_order_time_window: 1d
"""


@dataclass
class DemoPrometheus:
    """Debian's `prometheus`, when installed, taking the history follower's remote write
    and scraping the demo's exporter, on its own data directory; ended by its PID."""

    process: subprocess.Popen[bytes]
    url: str

    @classmethod
    def start(cls, workdir: Path, target: str) -> DemoPrometheus | None:
        binary = shutil.which("prometheus")
        if binary is None:
            return None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = workdir / "prometheus.yml"
        config.write_text(DEMO_PROMETHEUS_CONFIG.format(target=target))
        with open(workdir / "prometheus.log", "wb") as log:
            process = subprocess.Popen(  # noqa: S603 - the packaged binary, our own flags
                [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver"],
                stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        return cls(process, f"http://127.0.0.1:{port}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def run_demo(argv: Sequence[str], env: dict[str, str]) -> int:
    parser = argparse.ArgumentParser(
        prog="netatmo-exporter demo",
        description="Run the exporter against a simulated Netatmo cloud on loopback, with a "
                    "realistic account (stations, every module type, Home Coach, thermostats "
                    "and valves). No Netatmo "
                    "account needed.")
    parser.add_argument("-a", "--addr", default="127.0.0.1:9210",
                        help="where the exporter listens (default: 127.0.0.1:9210)")
    parser.add_argument("--unauthorized", action="store_true",
                        help="start without a token, to click through the authorization")
    parser.add_argument("--token-lifetime", default=600.0, type=float,
                        help="seconds each simulated access token lives (default: 600)")
    parser.add_argument("--no-prometheus", action="store_true",
                        help="without a Prometheus, even when Debian's prometheus is installed "
                             "(by default it scrapes the demo and takes its history)")
    args = parser.parse_args(argv)

    from netatmo_exporter.simulator import Cadence, FakeNetatmoCloud, demo_account

    client_id = "demo-client"
    client_secret = secrets.token_hex(16)
    # Devices upload every minute, so the status page shows readings and rhythms change.
    cloud = FakeNetatmoCloud(client_id, client_secret, token_lifetime=args.token_lifetime,
                             account=demo_account().with_cadence(Cadence(DEMO_UPLOAD_PERIOD)))
    cloud.start()
    workdir = Path(tempfile.mkdtemp(prefix="netatmo-exporter-demo-"))
    # The backfill's files outlive the demo (the user may still import them); the token and
    # the control socket do not.
    history_dir = Path(tempfile.mkdtemp(prefix="netatmo-exporter-demo-history-"))
    token_file = workdir / "token.json"
    control_socket = workdir / "control.sock"
    if not args.unauthorized:
        grant = cloud.issue_tokens(DEMO_SCOPES)
        FileTokenStore(token_file).save(Token.from_grant(
            grant["access_token"], grant["refresh_token"], float(grant["expires_in"]),
            SystemClock().now(), tuple(grant["scope"])))
    flags = ["--addr", args.addr, "--api-url", cloud.base_url, "--token-file", str(token_file),
             "--client-id", client_id, "--client-secret", client_secret,
             "--refresh-interval", "45s", "--age-stale", "1h", "--debug-handlers",
             "--scope", " ".join(DEMO_SCOPES), "--control-socket", str(control_socket)]
    try:
        config = load_config(
            flags, {key: value for key, value in env.items() if key.startswith("NETATMO_LOG")})
    except ConfigError as exc:
        print(f"netatmo-exporter demo: {exc}", file=sys.stderr)
        _clean_up(cloud, workdir, history_dir)
        return 2
    prometheus = None
    if not args.no_prometheus:
        target = f"{'127.0.0.1' if config.host in ('', '0.0.0.0', '::') else config.host}:" \
                 f"{config.port}"
        prometheus = DemoPrometheus.start(workdir, target)
        if prometheus is not None:
            # The history follower: 3 hours of stored readings at once, then every minute.
            config = load_config(
                [*flags, "--history.remote-write-url", f"{prometheus.url}/api/v1/write",
                 "--history.label", "job=netatmo", "--history.label", f"instance={target}",
                 "--history.interval", "1m"],
                {key: value for key, value in env.items() if key.startswith("NETATMO_LOG")})

    try:
        app = build_app(config)
    except OSError as exc:
        print(f"netatmo-exporter demo: cannot listen on {args.addr}: {exc.strerror}",
              file=sys.stderr)
        _clean_up(cloud, workdir, history_dir, prometheus)
        return 1
    history = backfill_command(program_command(env), cloud.base_url, control_socket,
                               history_dir / "history.om")
    print(
        f"\nDemo: simulated Netatmo cloud at {cloud.base_url}, token file {token_file}\n"
        f"  status page  {app.url}/\n  metrics      {app.url}/metrics\n"
        f"  history      {history}\n"
        + (f"  prometheus   {prometheus.url}/graph  scraping the exporter and taking every "
           "stored reading from its history follower (docs/history.md)\n"
           if prometheus is not None else "")
        + f"  {'authorize from the status page' if args.unauthorized else 'already authorized'}"
        "; stop with Ctrl-C\n"
        "  simulated on purpose, to show how the exporter reports them:\n"
        + "".join(f"    - {fault}\n" for fault in SIMULATED_FAULTS), file=sys.stderr,
        flush=True)
    try:
        return app.run_until_signalled(env)
    finally:
        _clean_up(cloud, workdir, history_dir, prometheus)


def _clean_up(cloud: FakeNetatmoCloud, workdir: Path, history_dir: Path,
              prometheus: DemoPrometheus | None = None) -> None:
    if prometheus is not None:
        prometheus.stop()
    cloud.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        history_dir.rmdir()
    except OSError:
        print(f"netatmo-exporter demo: the backfill's files stay in {history_dir}",
              file=sys.stderr)
