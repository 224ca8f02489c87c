"""`RemoteWriteReceiver`: the `HistoryReceiver` port over Prometheus remote write 1.0.

Each series goes out under its live family's name and labels with the family's conversion
(adapters/history/output.py, as the backfill file), plus the configured extra labels.
Credentials are read from their files at every write, as Prometheus' own `remote_write`
does, so a rotated password or token is used at once; they appear in no message or repr.

Receivers answer whole requests. Prometheus 2.42 answers 500 "too old sample" (later
versions 400) for a sample outside its out-of-order window and drops the whole request: on
such an answer the batch is sent again from ever later times, cut by halving (a few
requests), until the receiver takes the rest, and the readings it will never take are told
in one `ReceiverError("out_of_window")` carrying how many samples were stored. Exact for a
window (all series share its start); without one, Prometheus refuses per series what is
older than its newest sample, so a probe stored may make older readings refused.
"""

from __future__ import annotations

import base64
import email.utils
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from netatmo_exporter import __version__
from netatmo_exporter.adapters.history.output import LabelPairs, live_series
from netatmo_exporter.adapters.history.remote_write.wire import snappy_compress, write_request
from netatmo_exporter.adapters.system.trust_store import trust_context
from netatmo_exporter.adapters.web.http_policy import authority
from netatmo_exporter.domain.history.plan import Series
from netatmo_exporter.domain.history.remote_write import Batch, ReceiverError
from netatmo_exporter.domain.history.when import format_when

RECEIVER_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MAX_SAMPLES = 5000
"""Samples per request at most (Prometheus' own remote write sends 2,000 per request)."""
MAX_BATCH_BYTES = 1 << 20
"""Uncompressed bytes per request at most."""
BODY_SHOWN = 200
_WINDOW_WORDS = ("out of order", "out of bounds", "too old")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_OUT_OF_WINDOW_ADVICE = (
    "or bring these readings in with `netatmo-exporter backfill --from {begin} --to {end}` as "
    "blocks")


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Part of a series' samples, ready for the wire (milliseconds, converted values)."""

    labels: LabelPairs
    samples: tuple[tuple[int, float], ...]

    @property
    def size(self) -> int:
        return len(self.samples)


class RemoteWriteReceiver:
    """Satisfies `HistoryReceiver`. `extra_labels` are added to every series (the `job`
    and `instance` of the live series). `username` with `password_file` for basic auth, or
    `bearer_token_file`; `ca_file` adds a CA to the system's (`trust_store`) for an https://
    receiver."""

    def __init__(self, url: str, extra_labels: LabelPairs = (), *, username: str = "",
                 password_file: str = "", bearer_token_file: str = "", ca_file: str = "",
                 timeout: httpx.Timeout = RECEIVER_TIMEOUT,
                 transport: httpx.BaseTransport | None = None,
                 max_samples: int = MAX_SAMPLES, max_bytes: int = MAX_BATCH_BYTES) -> None:
        parts = urlsplit(url)
        self.url = _without_user(url)
        self.shown_url = shown_url(url)
        self._url_user = (unquote(parts.username or ""), unquote(parts.password or ""))
        self._extra = extra_labels
        self._username = username
        self._password_file = password_file
        self._bearer_token_file = bearer_token_file
        self._max_samples = max_samples
        self._max_bytes = max_bytes
        self._http = httpx.Client(
            timeout=timeout, verify=trust_context(ca_file), transport=transport,
            follow_redirects=False,
            headers={"User-Agent": f"netatmo-exporter/{__version__}",
                     "Content-Encoding": "snappy",
                     "Content-Type": "application/x-protobuf",
                     "X-Prometheus-Remote-Write-Version": "0.1.0"})

    def __repr__(self) -> str:
        return f"RemoteWriteReceiver({self.shown_url!r})"

    def close(self) -> None:
        self._http.close()

    def write(self, batch: Batch) -> int:
        chunks = [chunk for series, samples in batch
                  for chunk in self._chunks(series, samples)]
        written = 0
        try:
            for request in self._requests(chunks):
                written += self._send(request)
        except ReceiverError as exc:
            exc.accepted += written
            raise
        return written

    def _chunks(self, series: Series, samples: Sequence[tuple[int, float]]) -> list[_Chunk]:
        family, labels = live_series(series, self._extra)
        wire_labels = tuple(sorted((("__name__", family.name), *labels)))
        converted = tuple(sorted((time * 1000, float(family.convert(value)))
                                 for time, value in samples))
        return [_Chunk(wire_labels, converted[start:start + self._max_samples])
                for start in range(0, len(converted), self._max_samples)]

    def _requests(self, chunks: Sequence[_Chunk]) -> list[list[_Chunk]]:
        """Chunks grouped into requests of at most `max_samples` samples and about
        `max_bytes` bytes (a chunk is never cut here)."""
        requests: list[list[_Chunk]] = []
        current: list[_Chunk] = []
        samples = size = 0
        for chunk in chunks:
            cost = chunk.size * 24 + sum(len(n) + len(v) + 4 for n, v in chunk.labels)
            if current and (samples + chunk.size > self._max_samples
                            or size + cost > self._max_bytes):
                requests.append(current)
                current, samples, size = [], 0, 0
            current.append(chunk)
            samples += chunk.size
            size += cost
        if current:
            requests.append(current)
        return requests

    def _send(self, request: Sequence[_Chunk]) -> int:
        """Sends one request, halving it while the receiver says it is too large; returns
        the samples sent."""
        try:
            self._post(request)
        except ReceiverError as exc:
            if exc.reason == "too_large" and _count(request) > 1:
                first, second = _halves(request)
                return self._send(first) + self._send(second)
            if isinstance(exc, _WindowRefusal):
                self._store_the_rest(request, exc)
            raise
        return _count(request)

    def _store_the_rest(self, request: Sequence[_Chunk], refusal: _WindowRefusal) -> None:
        """Finds, by halving, the oldest time from which the receiver takes the request,
        sends that part and raises `out_of_window` for the older readings."""
        times = sorted({time for chunk in request for time, _ in chunk.samples})
        low, high = 1, len(times)    # times[high:] are stored; times[0] is refused
        while low < high:
            middle = (low + high) // 2
            try:
                self._post(_from(request, times[middle]))
            except ReceiverError as exc:
                if exc.reason != "out_of_window":
                    raise
                low = middle + 1
            else:
                high = middle
        cut = times[high] if high < len(times) else None
        stored = 0 if cut is None else _count(_from(request, cut))
        refused = [t for chunk in request for t, _ in chunk.samples if cut is None or t < cut]
        begin, end = format_when(min(refused) / 1000), format_when(max(refused) / 1000)
        raise ReceiverError(
            "out_of_window",
            f"remote write to {self.shown_url}: the receiver refuses {len(refused)} samples "
            f"from {begin} to {end} as outside its out-of-order window ({refusal}); set "
            "storage: tsdb: out_of_order_time_window in prometheus.yml",
            retry=False, accepted=stored,
            advice=_OUT_OF_WINDOW_ADVICE.format(begin=begin, end=end)) from None

    def _post(self, request: Sequence[_Chunk]) -> None:
        body = snappy_compress(write_request(
            (chunk.labels, chunk.samples) for chunk in request))
        try:
            answer = self._http.post(self.url, content=body, headers=self._credentials())
        except httpx.TimeoutException:
            raise self._error("unreachable", "no answer in time", retry=True) from None
        except httpx.HTTPError as exc:
            what = _clean(str(exc))
            if "CERTIFICATE_VERIFY_FAILED" in what:
                what += ("; if a private CA signed the receiver's certificate, give it with "
                         "--history.remote-write-ca-file")
            raise self._error("unreachable", f"cannot connect: {what}", retry=True) from None
        if 200 <= answer.status_code < 300:
            return
        raise self._refusal(answer)

    def _credentials(self) -> dict[str, str]:
        if self._bearer_token_file:
            return {"Authorization": f"Bearer {self._secret(self._bearer_token_file)}"}
        if self._username:
            return _basic(self._username, self._secret(self._password_file))
        if any(self._url_user):
            return _basic(*self._url_user)
        return {}

    def _secret(self, path: str) -> str:
        try:
            with open(path, encoding="utf-8") as file:
                return file.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or type(exc).__name__
            raise self._error("unauthorized", f"cannot read the credentials file {path} "
                              f"({why})", retry=False) from None

    def _refusal(self, answer: httpx.Response) -> ReceiverError:
        status = answer.status_code
        text = _clean(answer.text)
        said = f"HTTP {status} ({text})" if text else f"HTTP {status}"
        if any(words in text.lower() for words in _WINDOW_WORDS) and status in (400, 500):
            return _WindowRefusal(said)
        if status == 404:
            return self._error("not_enabled", f"{said}: no receiver at that path; Prometheus "
                               "needs --web.enable-remote-write-receiver; VictoriaMetrics "
                               "serves /api/v1/write", retry=False)
        if status in (401, 403):
            return self._error("unauthorized", f"{said}: check --history.remote-write-username "
                               "with --history.remote-write-password-file, or "
                               "--history.remote-write-bearer-token-file", retry=False)
        if status == 413:
            return self._error("too_large", f"{said}: the receiver refuses even a single "
                               "sample as too large", retry=False)
        if status == 429:
            after = _retry_after(answer.headers.get("Retry-After"))
            return self._error("rate_limited", f"{said}: too many requests; will retry",
                               retry=True, retry_after=after)
        if status >= 500:
            return self._error("server_error", f"{said}: will retry", retry=True,
                               retry_after=_retry_after(answer.headers.get("Retry-After")))
        return self._error("refused", f"{said}: the receiver refuses the data", retry=False)

    def _error(self, reason: str, what: str, retry: bool, retry_after: float | None = None
               ) -> ReceiverError:
        return ReceiverError(reason, f"remote write to {self.shown_url}: {what}", retry,
                             retry_after)


class _WindowRefusal(ReceiverError):
    """The receiver's own words for a request outside its window, before the rest of the
    request is stored (`RemoteWriteReceiver._store_the_rest`)."""

    def __init__(self, said: str) -> None:
        super().__init__("out_of_window", said, retry=False)


def shown_url(url: str) -> str:
    """The receiver's URL without user information, query or fragment (which may hold
    credentials)."""
    parts = urlsplit(url)
    netloc = authority(parts.hostname or "", parts.port or None)
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _without_user(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {pair}"}


def _clean(text: str) -> str:
    """Receiver text for a one-line message: control characters gone, truncated."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= BODY_SHOWN else text[:BODY_SHOWN] + "..."


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _count(request: Sequence[_Chunk]) -> int:
    return sum(chunk.size for chunk in request)


def _halves(request: Sequence[_Chunk]) -> tuple[list[_Chunk], list[_Chunk]]:
    if len(request) > 1:
        middle = len(request) // 2
        return list(request[:middle]), list(request[middle:])
    chunk = request[0]
    middle = chunk.size // 2
    return ([_Chunk(chunk.labels, chunk.samples[:middle])],
            [_Chunk(chunk.labels, chunk.samples[middle:])])


def _from(request: Sequence[_Chunk], millis: int) -> list[_Chunk]:
    """The samples at `millis` or later."""
    kept = (_Chunk(chunk.labels, tuple(s for s in chunk.samples if s[0] >= millis))
            for chunk in request)
    return [chunk for chunk in kept if chunk.size]
