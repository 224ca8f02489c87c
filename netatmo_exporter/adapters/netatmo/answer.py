"""Netatmo's answers read as untrusted input: a size cap, an overall deadline and a JSON
parse that cannot recurse without bound nor hand out numbers no reading can have.

Real answers are small: a getstationsdata of a station with every module type is about
6 KB, a full getmeasure page (1,024 readings of six types) about 60 KB, and accounts with
many stations and favourites stay well below 1 MB. `MAX_ANSWER_BYTES` leaves sixteen times
that; a larger answer is refused once its bytes pass the cap (the body is streamed, never
held whole beyond it), and so is one that takes longer than the deadline in all, however
steadily its bytes trickle in.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from netatmo_exporter.adapters.system.trust_store import SYSTEM_STORE
from netatmo_exporter.domain.errors import BadResponse, TransientError

MAX_ANSWER_BYTES = 16 * 1024 * 1024
DATA_DEADLINE = 30.0
"""Seconds a data call may take from its request to its answer's last byte."""
MAX_INTEGER_DIGITS = 20
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    retry_after: str
    body: bytes


def read_answer(http: httpx.Client, endpoint: str, method: str, path: str, *,
                deadline: float, limit: int = MAX_ANSWER_BYTES,
                headers: Mapping[str, str] | None = None, **kwargs: Any) -> Answer:
    """Sends the request and reads the whole answer within `deadline` seconds and `limit`
    bytes (after any content decoding). Raises `BadResponse` (reason `too_large` or
    `too_slow`) past either, and lets httpx's own errors through."""
    guard = _Deadline(deadline)
    try:
        return _read(http, endpoint, method, path, deadline, limit, guard,
                     headers={**(headers or {}), "Connection": "close"},
                     extensions={"trace": guard.trace}, **kwargs)
    except httpx.TransportError:
        if guard.passed:
            raise _too_slow(endpoint, deadline, "in the status line or headers") from None
        raise
    finally:
        guard.cancel()


class _Deadline:
    """Ends a call at its deadline in whatever phase it is: a timer shuts down the socket of
    the connection the call opened (each call opens its own, `Connection: close`), which
    wakes a read waiting for the next byte of a status line or header trickling in. The
    socket comes from httpcore's documented `trace` events."""

    _CONNECTED = ("connection.connect_tcp.complete", "connection.start_tls.complete")

    def __init__(self, seconds: float) -> None:
        self.passed = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event not in self._CONNECTED:
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._socket = sock
                passed = self.passed
            if passed:
                self._shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.passed = True
            sock = self._socket
        if sock is not None:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _read(http: httpx.Client, endpoint: str, method: str, path: str, deadline: float,
          limit: int, guard: _Deadline, **kwargs: Any) -> Answer:
    started = time.monotonic()
    with http.stream(method, path, **kwargs) as response:
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise _too_large(endpoint, limit, f"it announces {int(declared)} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise _too_large(endpoint, limit, "stopped reading")
            if guard.passed or time.monotonic() - started > deadline:
                raise _too_slow(endpoint, deadline, f"{size} bytes by then")
            chunks.append(chunk)
        return Answer(response.status_code, response.headers.get("content-type", ""),
                      response.headers.get("retry-after", ""), b"".join(chunks))


def _too_slow(endpoint: str, deadline: float, when: str) -> BadResponse:
    return BadResponse(f"Netatmo {endpoint}: the answer took longer than {deadline:g} s in "
                       f"all ({when})", "too_slow")


def _too_large(endpoint: str, limit: int, how: str) -> BadResponse:
    return BadResponse(f"Netatmo {endpoint}: the answer is larger than "
                       f"{limit // (1024 * 1024)} MB ({how})", "too_large")


def parse_json(answer: Answer, endpoint: str) -> Any:
    """The answer's JSON; `BadResponse` for anything that is not JSON, nests deeper than
    `MAX_DEPTH` (or Python's recursion allows), or holds an integer of more than
    `MAX_INTEGER_DIGITS` digits, a number out of a float's range, NaN or Infinity."""
    try:
        value = json.loads(answer.body, parse_int=_bounded_int, parse_float=_finite_float,
                           parse_constant=_no_constant)
        if not _nests_too_deep(value):
            return value
        problem = "nests too deep"
    except RecursionError:
        problem = "nests too deep"
    except _Refused as refused:
        problem = str(refused)
    except (ValueError, UnicodeDecodeError):
        problem = "is not valid JSON"
    raise BadResponse(f"Netatmo {endpoint}: the answer {problem} (HTTP {answer.status}, "
                      f"{len(answer.body)} bytes)")


def has_lone_surrogate(answer: Answer) -> bool:
    """Whether the answer escapes half a UTF-16 pair (`\\ud800` alone), which the payload
    parsers replace with U+FFFD."""
    return _LONE_SURROGATE.search(answer.body) is not None


@contextmanager
def transport_errors(endpoint: str) -> Iterator[None]:
    """httpx's timeouts and connection failures as `TransientError`s."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransientError(f"Netatmo {endpoint}: no answer in time ({type(exc).__name__})",
                             "timeout") from None
    except httpx.TransportError as exc:
        if (refused := _certificate_refusal(exc)) is not None:
            raise TransientError(
                f"Netatmo {endpoint}: connection failed, its certificate is not trusted "
                f"({refused.verify_message or refused.reason}); the service trusts the "
                f"system's CAs ({SYSTEM_STORE}; SSL_CERT_FILE or SSL_CERT_DIR choose others)",
                "connection_error") from None
        raise TransientError(f"Netatmo {endpoint}: connection failed ({type(exc).__name__})",
                             "connection_error") from None


def _certificate_refusal(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate check behind a transport error, if that is what failed."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None or isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class _Refused(ValueError):
    pass


MAX_DEPTH = 64
"""Netatmo's answers nest about eight deep. Python 3.13's decoder parses far deeper than
3.11's recursion allowed, so the depth is checked on the value, without recursing."""


def _nests_too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _Refused(f"holds an integer of {len(text)} digits")
    return int(text)


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise _Refused(f"holds a number beyond a float's range ({text[:20]})")
    return number


def _no_constant(text: str) -> float:
    raise _Refused(f"holds {text}, which is not a JSON number")
