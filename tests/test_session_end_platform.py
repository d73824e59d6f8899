"""The end of a session becomes one stop request (envy/platform/session_end.py).

POSIX signals are sent for real to a real process. The Windows console
handler and window procedure cannot run here: their decisions are tested
through the same objects the ctypes callbacks call.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from envy.platform.windows_session import (
    CTRL_C_EVENT,
    CTRL_CLOSE_EVENT,
    CTRL_SHUTDOWN_EVENT,
    ENDSESSION_CLOSEAPP,
    ENDSESSION_LOGOFF,
    WM_ENDSESSION,
    WM_QUERYENDSESSION,
    ConsoleEvents,
    EndSessionMessages,
)

ROOT = Path(__file__).resolve().parents[1]

_PROGRAM = textwrap.dedent(
    """
    import sys, threading, time
    sys.path.insert(0, sys.argv[1])
    from envy.platform.session_end import SessionEndWatcher

    ended = threading.Event()
    reasons = []
    def on_end(reason):
        reasons.append(reason)
        ended.set()
    watcher = SessionEndWatcher(on_end)
    watcher.start()
    print("ready", flush=True)
    # The main thread is busy in a lock-holding wait, as the agent's poll loop is.
    while not ended.wait(0.05):
        pass
    watcher.finished()
    watcher.close()
    print("stopped:", reasons[0], flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("sig", "words"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP"),
                                            (signal.SIGINT, "Ctrl-C")])
def test_a_signal_becomes_a_clean_stop_with_its_reason(sig: signal.Signals, words: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _PROGRAM, str(ROOT)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0  # stopped by its own code, not by the signal
    assert out.startswith("stopped:") and words in out


def test_console_close_waits_for_the_agent_to_finish_before_windows_ends_the_process() -> None:
    finished = threading.Event()
    reasons: list[str] = []
    events = ConsoleEvents(reasons.append, finished, bound_s=5)
    threading.Timer(0.2, finished.set).start()
    started = time.monotonic()
    assert events.handle(CTRL_CLOSE_EVENT) is True
    assert 0.15 < time.monotonic() - started < 4
    assert reasons == ["console window closed"]


def test_console_events_are_bounded_when_the_agent_never_finishes() -> None:
    events = ConsoleEvents(lambda _r: None, threading.Event(), bound_s=0.2)
    started = time.monotonic()
    assert events.handle(CTRL_SHUTDOWN_EVENT) is True
    assert time.monotonic() - started < 2


def test_ctrl_c_does_not_wait_and_unknown_events_pass_on() -> None:
    reasons: list[str] = []
    events = ConsoleEvents(reasons.append, threading.Event(), bound_s=30)
    assert events.handle(CTRL_C_EVENT) is True
    assert events.handle(99) is False
    assert reasons == ["Ctrl-C"]


def test_query_end_session_never_vetoes_and_end_session_stops_the_agent() -> None:
    finished = threading.Event()
    finished.set()
    reasons: list[str] = []
    messages = EndSessionMessages(reasons.append, finished, bound_s=5)
    assert messages.handle(WM_QUERYENDSESSION, 0, ENDSESSION_LOGOFF) == 1
    assert reasons == []  # asking is not ending: another program may still cancel it
    assert messages.handle(WM_ENDSESSION, 0, ENDSESSION_LOGOFF) == 0
    assert reasons == []  # wParam FALSE: the sign-out was cancelled
    messages.handle(WM_ENDSESSION, 1, ENDSESSION_LOGOFF)
    messages.handle(WM_ENDSESSION, 1, 0)
    messages.handle(WM_ENDSESSION, 1, ENDSESSION_CLOSEAPP)
    assert reasons[0] == "user signing out" and reasons[1] == "Windows shutting down"
    assert "closing the agent" in reasons[2]
    assert messages.handle(0x0001, 0, 0) is None  # WM_CREATE and the rest: DefWindowProc
