"""The certificates the exporter trusts for https://: the system's, as Debian keeps them.

Debian's ca-certificates keeps every trusted CA in `/etc/ssl/certs` under its subject hash;
OpenSSL reads one from there when a chain needs it. A context built from that folder holds
1.1 MB, one built from a whole bundle (httpx's default, certifi's file; or Python's default
context, the system's `ca-certificates.crt`) 4.4 MB: every CA parsed at start and kept
(issue 23, measured in docs/benchmark.md). The system's store is also where a home lab adds
its own CA (`update-ca-certificates`), which certifi's copy never sees.

OpenSSL's own variables choose another store: `SSL_CERT_FILE` (a bundle) and `SSL_CERT_DIR`
(a hashed folder). Without either, and without a hashed system folder (a machine that is not
Debian-like), certifi's bundle, httpx's own default."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

SYSTEM_STORE = "/etc/ssl/certs"
"""Where Debian keeps the hashed links (OpenSSL's default `capath`, /usr/lib/ssl/certs, links
here)."""


class UnusableTrustStore(ValueError):
    """A store named by `SSL_CERT_FILE`, `SSL_CERT_DIR` or an extra CA file cannot be used;
    the message names it and why. `extra`: the extra CA file is the one at fault."""

    def __init__(self, message: str, *, extra: bool = False) -> None:
        super().__init__(message)
        self.extra = extra


def trust_context(extra_ca_file: str = "", folders: tuple[str, ...] | None = None,
                  env: Mapping[str, str] = os.environ) -> ssl.SSLContext:
    """A client context (TLS 1.2 or later, host names checked) trusting the system's CAs,
    plus `extra_ca_file` when given. `folders`: where to look for the system's hashed
    folder (default: OpenSSL's `capath`, then `SYSTEM_STORE`). Raises `UnusableTrustStore`."""
    cafile = env.get("SSL_CERT_FILE") or None
    capath = env.get("SSL_CERT_DIR") or None
    named = f"SSL_CERT_FILE={cafile}"  # a folder is read lazily: only a file fails to load
    if capath is not None and not os.path.isdir(capath):
        raise UnusableTrustStore(f"SSL_CERT_DIR={capath}: not a folder")
    if cafile is None and capath is None:
        capath = hashed_folder(folders)
        if capath is None:
            import certifi  # httpx depends on it; loaded only where the system has no store

            cafile = certifi.where()
            named = f"certifi's {cafile}"
    try:
        context = ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        raise UnusableTrustStore(f"{named}: {_reason(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if extra_ca_file:
        try:
            context.load_verify_locations(cafile=extra_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UnusableTrustStore(f"{extra_ca_file}: {_reason(exc)}", extra=True) from None
    return context


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"holds no certificate OpenSSL can read ({exc.reason or exc})"
    return exc.strerror or str(exc)


def hashed_folder(folders: tuple[str, ...] | None = None) -> str | None:
    """The first of `folders` holding OpenSSL's hashed links (`<8 hex digits>.0`), if any."""
    if folders is None:
        folders = (ssl.get_default_verify_paths().capath, SYSTEM_STORE)
    for folder in folders:
        if folder and _has_hashed_links(Path(folder)):
            return folder
    return None


def _has_hashed_links(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(_is_hashed_name(entry.name) for entry in entries)
    except OSError:
        return False


def _is_hashed_name(name: str) -> bool:
    stem, dot, suffix = name.partition(".")
    return bool(dot) and suffix.isdigit() and len(stem) == 8 and all(
        char in "0123456789abcdef" for char in stem)
