"""Windows: the console control handler and a hidden window for log-off and shut-down.

Written from the Win32 documentation; it cannot run on the Linux CI machine
(the decisions it delegates to, ``ConsoleEvents`` and
``EndSessionMessages``, are tested there).

Why both routes: a console program gets CTRL_CLOSE/LOGOFF/SHUTDOWN through
SetConsoleCtrlHandler, but once a process has loaded user32.dll (any window,
and ctypes' own use of it) Windows no longer sends it CTRL_LOGOFF_EVENT and
CTRL_SHUTDOWN_EVENT, and ``pythonw`` has no console at all. Those processes
hear about the end of a session as WM_QUERYENDSESSION then WM_ENDSESSION sent
to their top-level windows (a message-only window does not get these
broadcasts), so we keep one hidden, never shown, top-level window with its
own message loop thread. After WM_ENDSESSION returns the process may be ended
at any time, so the window procedure waits there for the agent's clean stop.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable

EndCallback = Callable[[str], None]


log = logging.getLogger(__name__)

WM_CLOSE = 0x0010
WM_QUERYENDSESSION = 0x0011
WM_ENDSESSION = 0x0016
WM_QUIT = 0x0012
ENDSESSION_CLOSEAPP = 0x00000001
ENDSESSION_CRITICAL = 0x40000000
ENDSESSION_LOGOFF = 0x80000000

_LRESULT = ctypes.c_ssize_t
_WPARAM = ctypes.c_size_t
_LPARAM = ctypes.c_ssize_t
_UINT = ctypes.c_uint
_HANDLE = ctypes.c_void_p


# Windows console control events (wincon.h), and what each means for a user.
CTRL_C_EVENT = 0
CTRL_BREAK_EVENT = 1
CTRL_CLOSE_EVENT = 2
CTRL_LOGOFF_EVENT = 5
CTRL_SHUTDOWN_EVENT = 6
CONSOLE_REASONS: dict[int, str] = {
    CTRL_C_EVENT: "Ctrl-C",
    CTRL_BREAK_EVENT: "Ctrl-Break",
    CTRL_CLOSE_EVENT: "console window closed",
    CTRL_LOGOFF_EVENT: "user signing out",
    CTRL_SHUTDOWN_EVENT: "Windows shutting down",
}
# After these Windows ends the process as soon as the handler returns.
_FATAL_CONSOLE_EVENTS = (CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT)


class ConsoleEvents:
    """Windows console control events: request the stop, and hold the process until it is done.

    Separate from the ctypes registration so the decisions can be tested anywhere.
    """

    def __init__(self, on_end: EndCallback, finished: threading.Event, bound_s: float) -> None:
        self._on_end = on_end
        self._finished = finished
        self._bound_s = bound_s

    def handle(self, ctrl_type: int) -> bool:
        """The HandlerRoutine: True means handled (no default action)."""
        reason = CONSOLE_REASONS.get(ctrl_type)
        if reason is None:
            return False
        self._on_end(reason)
        if ctrl_type in _FATAL_CONSOLE_EVENTS:
            # Returning lets Windows end us: first let the agent give its frames back.
            self._finished.wait(self._bound_s)
        return True


def end_session_reason(lparam: int) -> str:
    """What WM_ENDSESSION's lParam says is happening, in the user's words."""
    if lparam & ENDSESSION_LOGOFF:
        return "user signing out"
    if lparam & ENDSESSION_CLOSEAPP:
        return "Windows is closing the agent (update or restart manager)"
    return "Windows shutting down"


class EndSessionMessages:
    """The window procedure's decisions, testable without a window."""

    def __init__(self, on_end: Callable[[str], None], finished: threading.Event, bound_s: float) -> None:
        self._on_end = on_end
        self._finished = finished
        self._bound_s = bound_s

    def handle(self, msg: int, wparam: int, lparam: int) -> int | None:
        """The result for ``msg``, or None to let DefWindowProc answer."""
        if msg == WM_QUERYENDSESSION:
            return 1  # never veto a sign-out: a lab machine must let the next user in
        if msg == WM_ENDSESSION:
            if wparam:  # the session really ends (FALSE: someone cancelled it)
                self._on_end(end_session_reason(lparam))
                self._finished.wait(self._bound_s)
            return 0
        if msg == WM_CLOSE:
            self._on_end("window closed")
            return 0
        return None


class WindowsSessionEvents:
    """Registers the console handler and runs the hidden window's message loop on its own thread."""

    def __init__(self, console: ConsoleEvents, on_end: Callable[[str], None], finished: threading.Event,
                 bound_s: float) -> None:
        self._console = console
        self._messages = EndSessionMessages(on_end, finished, bound_s)
        self._thread: threading.Thread | None = None
        self._thread_id = 0
        self._keep: list[object] = []  # ctypes callbacks must outlive their registration

    def start(self) -> None:
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        handler_type = ctypes.WINFUNCTYPE(ctypes.c_int, ctypes.c_uint32)  # type: ignore[attr-defined]
        handler = handler_type(lambda ctrl: 1 if self._console.handle(int(ctrl)) else 0)
        self._keep.append(handler)
        if not kernel32.SetConsoleCtrlHandler(handler, 1):
            log.debug("no console control handler (no console: pythonw?)")
        self._thread = threading.Thread(target=self._message_loop, name="envy-session-window", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread_id:
            user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
            user32.PostThreadMessageW(self._thread_id, WM_QUIT, 0, 0)

    def _message_loop(self) -> None:
        user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        wndproc_type = ctypes.WINFUNCTYPE(_LRESULT, _HANDLE, _UINT, _WPARAM, _LPARAM)  # type: ignore[attr-defined]
        user32.DefWindowProcW.restype = _LRESULT
        user32.DefWindowProcW.argtypes = [_HANDLE, _UINT, _WPARAM, _LPARAM]

        def wndproc(hwnd: int, msg: int, wparam: int, lparam: int) -> int:
            answer = self._messages.handle(msg, wparam, lparam)
            return answer if answer is not None else user32.DefWindowProcW(hwnd, msg, wparam, lparam)

        proc = wndproc_type(wndproc)
        self._keep.append(proc)

        class WNDCLASSW(ctypes.Structure):
            _fields_ = [("style", _UINT), ("lpfnWndProc", wndproc_type), ("cbClsExtra", ctypes.c_int),
                        ("cbWndExtra", ctypes.c_int), ("hInstance", _HANDLE), ("hIcon", _HANDLE),
                        ("hCursor", _HANDLE), ("hbrBackground", _HANDLE), ("lpszMenuName", ctypes.c_wchar_p),
                        ("lpszClassName", ctypes.c_wchar_p)]

        kernel32.GetModuleHandleW.restype = _HANDLE
        instance = kernel32.GetModuleHandleW(None)
        wc = WNDCLASSW()
        wc.lpfnWndProc = proc
        wc.hInstance = instance
        wc.lpszClassName = "EnvyAgentSessionWindow"
        if not user32.RegisterClassW(ctypes.byref(wc)):
            log.warning("no log-off/shut-down window (RegisterClassW error %s)", ctypes.get_last_error())  # type: ignore[attr-defined]
            return
        user32.CreateWindowExW.restype = _HANDLE
        user32.CreateWindowExW.argtypes = [ctypes.c_uint32, ctypes.c_wchar_p, ctypes.c_wchar_p, ctypes.c_uint32,
                                           ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                           _HANDLE, _HANDLE, _HANDLE, ctypes.c_void_p]
        # A top-level window (no parent, never shown): message-only windows miss WM_ENDSESSION.
        hwnd = user32.CreateWindowExW(0, wc.lpszClassName, "Envy agent", 0, 0, 0, 0, 0, None, None, instance, None)
        if not hwnd:
            log.warning("no log-off/shut-down window (CreateWindowExW error %s)", ctypes.get_last_error())  # type: ignore[attr-defined]
            return
        self._thread_id = kernel32.GetCurrentThreadId()
        msg = ctypes.create_string_buffer(64)  # MSG is 48 bytes on 64-bit Windows
        while user32.GetMessageW(msg, None, 0, 0) > 0:
            user32.TranslateMessage(msg)
            user32.DispatchMessageW(msg)
        user32.DestroyWindow(hwnd)
