"""What the history follower and `backfill --remote-write` need from a receiver of
Prometheus remote write (SPEC 13): the port, and how a refusal is told.

A batch is the readings of some series as Netatmo stored them (Unix seconds, raw values);
the adapter gives each series its live family's name and labels and converts the values as
that family does (adapters/history/output.py), so the live path, the backfill file and
remote write share one conversion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from netatmo_exporter.domain.history.plan import Series

Batch = Sequence[tuple[Series, Sequence[tuple[int, float]]]]
"""Each series with its readings (Unix seconds, Netatmo's value), oldest first."""

RECEIVER_REASONS = (
    "unreachable",     # connection refused, DNS, TLS, timeout: retried with backoff
    "not_enabled",     # 404: no receiver at that path (Prometheus without the flag)
    "out_of_window",   # 400 for samples outside the out-of-order window: never retried
    "refused",         # any other 4xx the receiver gives for the data: never retried
    "unauthorized",    # 401/403: credentials
    "too_large",       # 413: a smaller batch is sent instead
    "rate_limited",    # 429: retried with backoff
    "server_error",    # 5xx: retried with backoff
)
"""The `reason` label of write errors, each with what the operator changes."""


class ReceiverError(Exception):
    """A receiver did not take a batch. `reason` is one of `RECEIVER_REASONS`; the message
    is one line naming the receiver and what to change (never a credential). `retry`: the
    same data may be taken later (429, 5xx, unreachable); otherwise it never will be as is.
    `retry_after`: seconds the receiver asked for, if it did. `accepted`: samples of the
    batch the receiver stored nevertheless (`out_of_window`: all but the refused ones).
    `advice`: the command that brings the refused readings in another way, for a reader
    of this one error; `problem` is the message without it (the follower names its own
    command, over every page refused)."""

    def __init__(self, reason: str, message: str, retry: bool,
                 retry_after: float | None = None, *, accepted: int = 0,
                 advice: str = "") -> None:
        super().__init__(f"{message}, {advice}" if advice else message)
        self.problem = message
        self.reason = reason
        self.retry = retry
        self.retry_after = retry_after
        self.accepted = accepted


class HistoryReceiver(Protocol):
    def write(self, batch: Batch) -> int:
        """Sends every reading of `batch` at its own time under its series' live family,
        labels and conversion (plus the configured extra labels); returns the samples the
        receiver accepted. Raises `ReceiverError`."""
        ...
