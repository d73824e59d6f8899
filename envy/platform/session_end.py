"""Every way a user's session can end, turned into one stop request for the agent.

- POSIX: SIGTERM (sign-out on Linux and macOS: logind and launchd/loginwindow
  send it, so do ``kill`` and service managers), SIGHUP (the terminal closed,
  some sign-outs), SIGINT (Ctrl-C).
- Windows: the console control handler (Ctrl-C, Ctrl-Break, console closed,
  log-off, shut-down) and, for a windowless ``pythonw`` agent or any process
  that has loaded user32 (which stops log-off and shut-down reaching the
  console handler), a hidden top-level window that answers
  WM_QUERYENDSESSION / WM_ENDSESSION (``windows_session.py``).

A POSIX signal handler only records the reason and writes one byte to a
pipe; a watcher thread reads it and calls ``on_end(reason)`` from ordinary
code. (Setting a ``threading.Event`` from a handler can deadlock when the
interrupted main thread holds the same lock; ``os._exit`` from a handler
skips giving the frames back.) On Windows the handler and the window
procedure run on their own threads; Windows terminates the process when they
return from a close/log-off/shut-down event, so they wait (up to
``STOP_BOUND_S``) until the agent calls ``finished()``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

# The documented bound for a clean stop: renders killed, frames given back,
# final status written. Windows allows a console about 5 s after a close
# event before it terminates the process (the default HungAppTimeout).
STOP_BOUND_S = 4.5

EndCallback = Callable[[str], None]

POSIX_REASONS: dict[str, str] = {
    "SIGTERM": "SIGTERM (sign-out, shut-down or kill)",
    "SIGHUP": "SIGHUP (terminal closed or sign-out)",
    "SIGINT": "SIGINT (Ctrl-C)",
}

class SessionEndWatcher:
    """Calls ``on_end(reason)`` once per event that ends the session. Start from the main thread."""

    def __init__(self, on_end: EndCallback, bound_s: float = STOP_BOUND_S) -> None:
        self._on_end = on_end
        self._bound_s = bound_s
        self._finished = threading.Event()
        self._reasons: list[str] = []  # appended by signal handlers (atomic), read by the thread
        self._read_fd = self._write_fd = -1
        self._previous: dict[int, object] = {}
        self._thread: threading.Thread | None = None
        self._windows: object | None = None
        self._closed = False

    def start(self) -> None:
        if sys.platform == "win32":
            self._start_windows()
        else:
            self._start_posix()

    def finished(self) -> None:
        """The agent has stopped cleanly: Windows handlers waiting for it may return now."""
        self._finished.set()

    def close(self) -> None:
        """Restore the previous signal handlers and stop the watcher thread."""
        if self._closed:
            return
        self._closed = True
        self._finished.set()
        for signum, handler in self._previous.items():
            try:
                signal.signal(signum, handler)  # type: ignore[arg-type]
            except (ValueError, OSError):
                pass
        if self._write_fd >= 0:
            os.write(self._write_fd, b"\0")  # wakes the thread, which closes the pipe
        if self._windows is not None:
            self._windows.close()  # type: ignore[attr-defined]

    # -- POSIX ---------------------------------------------------------------------------
    def _start_posix(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        for name in POSIX_REASONS:
            signum = getattr(signal, name)
            self._previous[signum] = signal.signal(signum, self._on_signal)
        self._thread = threading.Thread(target=self._relay, name="envy-session-end", daemon=True)
        self._thread.start()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only record and wake: everything else happens on the relay thread.
        self._reasons.append(POSIX_REASONS.get(signal.Signals(signum).name, f"signal {signum}"))
        try:
            os.write(self._write_fd, b"s")
        except OSError:
            pass

    def _relay(self) -> None:
        try:
            while True:
                data = os.read(self._read_fd, 64)
                while self._reasons:
                    self._call(self._reasons.pop(0))
                if not data or b"\0" in data:
                    return
        finally:
            os.close(self._read_fd)
            os.close(self._write_fd)

    def _call(self, reason: str) -> None:
        try:
            self._on_end(reason)
        except Exception:
            log.exception("handling the end of the session (%s) failed", reason)

    # -- Windows -------------------------------------------------------------------------
    def _start_windows(self) -> None:
        from envy.platform.windows_session import ConsoleEvents, WindowsSessionEvents

        # Our console handler is registered after Python's and so runs first; it
        # answers Ctrl-C itself, so Python never raises KeyboardInterrupt for it.
        console = ConsoleEvents(self._call, self._finished, self._bound_s)
        self._windows = WindowsSessionEvents(console, self._call, self._finished, self._bound_s)
        self._windows.start()
