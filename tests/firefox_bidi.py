"""A small WebDriver BiDi client for driving a real headless Firefox in tests.

Selenium drives Firefox through geckodriver, which Debian does not package and
which CI cannot download (it reaches only PyPI, Debian and npm). Firefox itself
speaks the W3C WebDriver BiDi protocol over a websocket when started with
``--remote-debugging-port``, so the tests talk to it directly: JSON commands
with an id, answered by a message with the same id; events arrive in between.

Only what the web monitor's tests need is here: a page, navigation, running
JavaScript, real key presses, screenshots, and the page's network requests.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websocket  # websocket-client: a plain synchronous client is all a test needs

from envy.platform.processes import has_exited, kill_tree, popen_kwargs_new_group

FIREFOX = "firefox-esr"

# Firefox prints this on stderr once the BiDi server listens (port 0 lets it pick a free one).
_LISTENING = re.compile(rb"WebDriver BiDi listening on (ws://[^\s]+)")

# Key values of the WebDriver spec's keyboard table (what ``input.performActions`` sends).
ENTER = "\ue007"
TAB = "\ue004"

# A fresh profile would otherwise phone home on start (updates, telemetry, safe
# browsing lists, captive-portal checks); the Remote Agent's own recommended
# preferences cover most of it, these make the rest explicit so a test run in an
# offline lab does not wait on the network.
_PREFS = {
    "app.update.disabledForTesting": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.safebrowsing.update.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
}


class BiDiError(RuntimeError):
    """Firefox answered a command with an error, or a script threw."""


@dataclass(frozen=True)
class Request:
    """One request a page made (from a ``network.beforeRequestSent`` event)."""

    url: str
    context: str


class Firefox:
    """One BiDi session on one top-level page (``context``) of a running Firefox."""

    def __init__(self, ws: websocket.WebSocket, context: str, timeout: float) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._timeout = timeout
        self.context = context
        self.requests: list[Request] = []  # filled as events arrive, read by the test

    # -- the protocol ---------------------------------------------------------

    def command(self, method: str, params: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are recorded."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + (timeout or self._timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Firefox did not answer {method} within {timeout or self._timeout:.0f} s")
            self._ws.settimeout(left)
            message = json.loads(self._ws.recv())
            if message.get("type") == "event":
                self._record(message)
            elif message.get("id") == msg_id:
                if message.get("type") == "error":
                    raise BiDiError(f"{method}: {message.get('error')}: {message.get('message')}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def _record(self, event: dict[str, Any]) -> None:
        if event.get("method") == "network.beforeRequestSent":
            params = event["params"]
            self.requests.append(Request(params["request"]["url"], params.get("context") or ""))

    # -- what a test does -----------------------------------------------------

    def navigate(self, url: str) -> None:
        """Load ``url`` and wait for its load event, like Selenium's ``get``."""
        self.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def value(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited).

        The result travels as JSON text rather than as BiDi's typed remote
        values: every answer the tests read is plain data, and JSON needs no
        deserializer of our own.
        """
        result = self.command(
            "script.evaluate",
            {
                "expression": f"(async () => JSON.stringify(await ({expression})))()",
                "target": {"context": self.context},
                "awaitPromise": True,
            },
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BiDiError(f"script threw: {details.get('text')} (in {expression!r})")
        remote = result["result"]
        return None if remote.get("type") == "undefined" else json.loads(remote["value"])

    def run(self, statements: str) -> None:
        """Run JavaScript statements in the page for their effect (a click, a focus)."""
        self.value(f"(() => {{ {statements}; }})()")

    def type_keys(self, text: str) -> None:
        """Real key presses into whatever has the focus (``ENTER``, ``TAB`` included)."""
        actions: list[dict[str, str]] = []
        for key in text:
            actions += [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]
        self.command(
            "input.performActions",
            {"context": self.context, "actions": [{"type": "key", "id": "keyboard", "actions": actions}]},
        )

    def screenshot_png(self) -> bytes:
        """The page's viewport as PNG bytes."""
        data = self.command("browsingContext.captureScreenshot", {"context": self.context})["data"]
        return base64.b64decode(data)


@contextmanager
def headless_firefox(
    binary: str = FIREFOX, width: int = 1366, height: int = 900, timeout: float = 60.0
) -> Iterator[Firefox]:
    """Start Firefox headless with a throw-away profile; close it and its whole process tree afterwards."""
    profile = Path(tempfile.mkdtemp(prefix="envy-firefox-"))
    prefs = "".join(f"user_pref({json.dumps(key)}, {json.dumps(value)});\n" for key, value in _PREFS.items())
    (profile / "user.js").write_text(prefs)
    # stderr goes to a file, not a pipe: nobody would drain a pipe after start-up,
    # and Firefox blocks once a full pipe's buffer is full.
    err_path = profile / "firefox.stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [binary, "--headless", "--no-remote", "--remote-debugging-port=0", "--profile", str(profile)]
            + ["about:blank"],  # not the start page: it would fetch from the internet
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            **popen_kwargs_new_group(),  # type: ignore[call-overload]
        )
    ws: websocket.WebSocket | None = None
    try:
        url = _wait_listening(proc, err_path, timeout)
        # Firefox refuses a handshake carrying an Origin header (a web page must
        # not drive the browser); websocket-client sends one unless told not to.
        ws = websocket.create_connection(f"{url}/session", timeout=timeout, suppress_origin=True)
        browser = Firefox(ws, context="", timeout=timeout)
        browser.command("session.new", {"capabilities": {}})
        browser.context = browser.command("browsingContext.getTree", {"maxDepth": 0})["contexts"][0]["context"]
        browser.command(
            "browsingContext.setViewport",
            {"context": browser.context, "viewport": {"width": width, "height": height}},
        )
        browser.command("session.subscribe", {"events": ["network.beforeRequestSent"]})
        yield browser
        browser.command("browser.close", {}, timeout=15)
    finally:
        if ws is not None:
            ws.close()
        _stop(proc)
        shutil.rmtree(profile, ignore_errors=True)


def _wait_listening(proc: subprocess.Popen[bytes], err_path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _LISTENING.search(err_path.read_bytes())
        if found:
            return found.group(1).decode()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = err_path.read_bytes()[-2000:].decode(errors="replace")
    raise RuntimeError(f"Firefox's WebDriver BiDi server did not start (exit {proc.poll()}): {tail}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Let Firefox quit by itself (after ``browser.close``), then kill whatever is left of its tree.

    Firefox is not reaped until then: while it is a zombie its pid, and so its
    process group (where its content processes live), cannot go to a stranger.
    """
    deadline = time.monotonic() + 10
    while not has_exited(proc) and time.monotonic() < deadline:
        time.sleep(0.05)
    kill_tree(proc.pid)
    proc.wait(timeout=10)
