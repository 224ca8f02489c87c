"""`netatmo-exporter login`: authorize a box that no browser can reach.

Prints the authorize URL, reads back the URL the browser was sent to (the page itself
may fail to load: only its address matters), checks the state, exchanges the code and
writes the token file under the rule every writer follows (domain/authorization/tokens.py).
Same flags and environment as `serve`.
"""

from __future__ import annotations

import hmac
import sys
from collections.abc import Sequence
from typing import TextIO

from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.pages.oauth_flow import authorize_url, new_state, parse_callback
from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.adapters.system.logging import SecretRedactor, configure_logging
from netatmo_exporter.adapters.system.token_file import FileTokenStore, RedactingTokenStore
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.errors import NetatmoError
from netatmo_exporter.entrypoints.config import ConfigError, load_config

PROG = "netatmo-exporter login"


def run_login(argv: Sequence[str], env: dict[str, str], stdin: TextIO | None = None,
              stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        config = load_config(argv, env)
    except ConfigError as exc:
        print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
        return 2
    redirect_uri = config.external_url.rstrip("/") + "/auth/callback"
    state = new_state()
    url = authorize_url(config.api_url, config.client_id, redirect_uri, config.scopes, state)
    print("1. Open this address in a browser (on any computer) and accept:\n\n"
          f"   {url}\n\n"
          f"2. Netatmo then sends the browser to {redirect_uri}?code=...\n"
          "   That page may fail to load; copy the whole address from the address bar\n"
          "   and paste it here, then press Enter:", file=stdout, flush=True)
    line = stdin.readline(8192)
    try:
        answer = parse_callback(line)
    except ValueError as exc:
        print(f"{PROG}: that address is malformed: {exc}", file=sys.stderr)
        return 1
    if answer.error:
        print(f"{PROG}: Netatmo answered {answer.error!r}: nothing was written", file=sys.stderr)
        return 1
    if answer.state is None or not hmac.compare_digest(answer.state.encode(), state.encode()):
        print(f"{PROG}: the pasted address does not belong to this login (its state differs); "
              "nothing was written. Paste the address from the authorization started above.",
              file=sys.stderr)
        return 1
    if answer.code is None:
        print(f"{PROG}: the pasted address carries no code; nothing was written",
              file=sys.stderr)
        return 1
    client = NetatmoClient(config.api_url, config.client_id, config.client_secret, SystemClock())
    redactor = SecretRedactor()
    redactor.add(config.client_secret)
    # The service's own rule for writing the token file (domain/authorization/tokens.py): under
    # its lock, never over a newer authorization.
    tokens = TokenManager(client, RedactingTokenStore(FileTokenStore(config.token_file), redactor),
                          SystemClock(), configure_logging("warn", config.log_format, redactor))
    try:
        tokens.load()
        tokens.authorize_with_code(answer.code, redirect_uri, config.scope)
    except NetatmoError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    status = tokens.status()
    if status.unsaved:
        print(f"{PROG}: the token could not be written: {status.token_file_problem}",
              file=sys.stderr)
        return 1
    print(f"Authorized. Token written to {status.token_file}. A running exporter adopts it "
          "at its next call to Netatmo.",
          file=stdout)
    return 0
