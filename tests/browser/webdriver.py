"""A small W3C WebDriver client for chromedriver, over the standard library.

Enough to drive Debian's headless Chromium through the exporter's pages: open a URL,
find an element by CSS selector, click, type, read text and attributes, take a
screenshot. Every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.harness import wait_until

ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic", "--disable-extensions",
    "--disable-default-apps", "--lang=en-US",
)


class WebDriverError(AssertionError):
    pass


def _call(method: str, url: str, payload: object | None = None, timeout: float = 30.0
          ) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}").get("value")
    except urllib.error.HTTPError as exc:
        raise WebDriverError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from None


class ChromeDriver:
    """One chromedriver process, ended by its PID. It picks its own free port (`--port=0`) and
    names it in its log: no window in which another test can take a port chosen for it."""

    def __init__(self, log_path: Path, timeout: float = 60.0) -> None:
        self._log_path = log_path
        self._log = open(log_path, "ab")
        start = self._log.tell()
        self.proc = subprocess.Popen(
            [CHROMEDRIVER, "--port=0", "--allowed-ips=127.0.0.1"],
            stdout=self._log, stderr=subprocess.STDOUT)
        try:
            port = wait_until("chromedriver's port", lambda: self._started_port(start), timeout,
                              every=0.1, detail=self._log_text)
            self.url = f"http://127.0.0.1:{port}"
            wait_until("chromedriver ready", lambda: _call(
                "GET", self.url + "/status", timeout=2).get("ready"), timeout, every=0.1,
                ignoring=(OSError, WebDriverError), detail=self._log_text)
        except AssertionError:
            self.stop()
            raise

    def _log_text(self) -> str:
        return self._log_path.read_text(errors="replace")[-3000:]

    def _started_port(self, start: int) -> int | None:
        with open(self._log_path, "rb") as log:
            log.seek(start)
            found = re.search(rb"started successfully on port (\d+)", log.read())
        if found:
            return int(found.group(1))
        if self.proc.poll() is not None:
            raise AssertionError(f"chromedriver exited with {self.proc.returncode} before "
                                 f"naming its port:\n{self._log_text()}")
        return None

    def session(self, profile: Path, width: int = 1100, height: int = 1600,
                extra_args: tuple[str, ...] = ()) -> Session:
        capabilities = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [*CHROMIUM_ARGS, f"--user-data-dir={profile}",
                         f"--window-size={width},{height}", *extra_args],
            },
        }}}
        value = _call("POST", self.url + "/session", capabilities, timeout=60)
        return Session(f"{self.url}/session/{value['sessionId']}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


class Session:
    def __init__(self, url: str) -> None:
        self.url = url

    def open(self, url: str) -> None:
        _call("POST", self.url + "/url", {"url": url})

    @property
    def current_url(self) -> str:
        return str(_call("GET", self.url + "/url"))

    def source(self) -> str:
        return str(_call("GET", self.url + "/source"))

    def find(self, css: str) -> Element:
        value = _call("POST", self.url + "/element", {"using": "css selector", "value": css})
        return Element(f"{self.url}/element/{value[ELEMENT_KEY]}")

    def exists(self, css: str) -> bool:
        found = _call("POST", self.url + "/elements", {"using": "css selector", "value": css})
        return bool(found)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 20.0
                 ) -> None:
        wait_until(what, condition, timeout, every=0.1,
                   detail=lambda: f"at {self.current_url}:\n{self.source()[:2000]}")

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(_call("GET", self.url + "/screenshot")))
        return path

    def quit(self) -> None:
        _call("DELETE", self.url)


class Element:
    def __init__(self, url: str) -> None:
        self.url = url

    def click(self) -> None:
        _call("POST", self.url + "/click", {})

    def type(self, text: str) -> None:
        _call("POST", self.url + "/value", {"text": text})

    @property
    def text(self) -> str:
        return str(_call("GET", self.url + "/text"))

    def attribute(self, name: str) -> str | None:
        value = _call("GET", f"{self.url}/attribute/{name}")
        return None if value is None else str(value)

    def css(self, name: str) -> str:
        """The computed value of a CSS property."""
        return str(_call("GET", f"{self.url}/css/{name}"))
