"""A second process that renews and flushes from a token file, as a backfill beside the
service (or a second service by mistake) does: `python -m tests.support.token_writer`.

Each round takes an access token (renewing it when due, or adopting the token another
process wrote), declares it rejected so that the next round renews again, and flushes
every `--flush-every` rounds. Rounds end at `--rounds` or after `--seconds`, or when the
file `--stop-file` appears. Prints one JSON line: rounds, errors by reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from netatmo_exporter.adapters.netatmo.client import NetatmoClient
from netatmo_exporter.adapters.system.clock import SystemClock
from netatmo_exporter.adapters.system.logging import SecretRedactor, configure_logging
from netatmo_exporter.adapters.system.token_file import FileTokenStore
from netatmo_exporter.domain.authorization.tokens import TokenManager
from netatmo_exporter.domain.errors import NetatmoError, TokenFileError
from tests.support.harness import CLIENT_ID, CLIENT_SECRET


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--flush-every", type=int, default=1)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--stop-file", default=None)
    args = parser.parse_args()
    redactor = SecretRedactor()
    redactor.add(CLIENT_SECRET)
    log = configure_logging("warn", "logfmt", redactor, sys.stderr)
    client = NetatmoClient(args.api_url, CLIENT_ID, CLIENT_SECRET, SystemClock(), attempts=1)
    tokens = TokenManager(client, FileTokenStore(args.token_file), SystemClock(), log)
    tokens.load()
    errors: Counter[str] = Counter()
    deadline = time.monotonic() + args.seconds
    rounds = 0
    stop_file = Path(args.stop_file) if args.stop_file else None
    while rounds < args.rounds and time.monotonic() < deadline:
        if stop_file is not None and stop_file.exists():
            break
        rounds += 1
        try:
            tokens.reject_access_token(tokens.access_token())
        except NetatmoError as exc:
            errors[exc.reason] += 1
        if rounds % args.flush_every == 0:
            try:
                tokens.flush()
            except TokenFileError:
                errors["flush_failed"] += 1
        time.sleep(args.pause)
    client.close()
    print(json.dumps({"rounds": rounds, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
