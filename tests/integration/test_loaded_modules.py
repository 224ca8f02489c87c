"""The service loads what its configuration uses, nothing more (issue 23): without a web
configuration no YAML and no bcrypt, never the simulator, the backfill, the demo, login or
web-user, and the history follower's modules only with `--history.remote-write-url`.

`tests.support.loaded_modules` runs the real command line in a fresh interpreter and lists
`sys.modules` once the service has served `/metrics` and its status page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bcrypt

from netatmo_exporter.simulator import FakeNetatmoCloud
from tests.conftest import exporter_args
from tests.support.harness import REPO, free_port, seed_token
from tests.support.loaded_modules import BEGIN, END

NEVER_IN_THE_SERVICE = (
    "netatmo_exporter.simulator",
    "netatmo_exporter.entrypoints.backfill",
    "netatmo_exporter.entrypoints.demo",
    "netatmo_exporter.entrypoints.login",
    "netatmo_exporter.entrypoints.simulator",
    "netatmo_exporter.entrypoints.web_user",
    "netatmo_exporter.domain.history.calls",
    "netatmo_exporter.adapters.history.spool",
    "netatmo_exporter.adapters.history.progress",
    "netatmo_exporter.adapters.history.remote_sink",
    # httpx's command-line client and what it takes (bookworm's httpx loads them).
    "httpx._main", "click", "rich", "pygments",
)
WEB_CONFIG_STACK = ("yaml", "bcrypt", "netatmo_exporter.adapters.web.config_file")
HISTORY_FOLLOWER = (
    "netatmo_exporter.domain.history.follower",
    "netatmo_exporter.domain.history.remote_write",
    "netatmo_exporter.adapters.history.remote_write",
    "netatmo_exporter.adapters.history.checkpoint",
    "netatmo_exporter.adapters.metrics.history_collector",
)
FOLLOWER_LATER = ("netatmo_exporter.adapters.netatmo.measure_payload",
                  "netatmo_exporter.domain.history.backfill")
"""The follower's too: the parser of its first answer, the paging it shares with the
backfill."""


def loaded_modules(args: list[str], workdir: Path, env: dict[str, str] | None = None
                   ) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.loaded_modules", f"127.0.0.1:{free_port()}",
         *args],
        capture_output=True, text=True, timeout=60, cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert BEGIN in lines and END in lines, done.stderr
    return set(lines[lines.index(BEGIN) + 1:lines.index(END)])


def held(modules: set[str], names: tuple[str, ...]) -> set[str]:
    """Which of `names`, or of their submodules, are in `modules`."""
    return {module for module in modules for name in names
            if module == name or module.startswith(name + ".")}


def test_a_plain_service_loads_neither_the_web_configuration_nor_history(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)

    modules = loaded_modules(exporter_args(cloud, token_path), tmp_path)

    assert "netatmo_exporter.adapters.web.http_server" in modules  # it did serve
    assert held(modules, WEB_CONFIG_STACK + HISTORY_FOLLOWER + FOLLOWER_LATER
                + NEVER_IN_THE_SERVICE) == set()


def test_the_web_configuration_and_the_follower_load_when_configured(
        cloud: FakeNetatmoCloud, token_path: Path, tmp_path: Path) -> None:
    seed_token(cloud, token_path)
    web_config = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"scraper-password", bcrypt.gensalt(rounds=4)).decode()
    web_config.write_text(f"basic_auth_users:\n  prometheus: {hashed}\n")
    receiver = f"http://127.0.0.1:{free_port()}/api/v1/write"  # nobody listens: no matter

    modules = loaded_modules(
        exporter_args(cloud, token_path, "--web.config.file", str(web_config),
                      "--history.remote-write-url", receiver),
        tmp_path, {"LOADED_MODULES_CREDENTIALS": "prometheus:scraper-password"})

    assert {*WEB_CONFIG_STACK, *HISTORY_FOLLOWER} <= modules
    assert held(modules, NEVER_IN_THE_SERVICE) == set()
