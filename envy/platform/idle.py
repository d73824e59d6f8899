"""Is someone using this machine? Keyboard/mouse idle time, other users, other programs' CPU.

The seam is ``MachineUseReader``: the NIMBY watcher (envy/nimby/) asks it for
a ``MachineUse`` reading and never touches the OS itself, so tests can give it
recorded values. The input-idle readers, one per OS:

- Windows: ``GetLastInputInfo`` against ``GetTickCount`` (both in ms; the
  tick counter wraps every 49.7 days, hence the modular difference). It sees
  the input of the session the agent runs in.
- macOS: ``HIDIdleTime`` (nanoseconds) of the IOHIDSystem entry, read with
  ``ioreg``; it covers every local user.
- Linux with X11: the MIT-SCREEN-SAVER extension (``XScreenSaverQueryInfo``
  in libXss, through ctypes), for the display in ``DISPLAY``.
- Linux otherwise (Wayland, a console): logind's ``IdleHint`` and
  ``IdleSinceHint`` of the seat's sessions, through ``loginctl``. Desktops
  set the hint after their own idle delay, so this reader is coarse.

None from a reader means "cannot tell": the watcher then relies on the other
signals (signed-in users, CPU).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import psutil

log = logging.getLogger(__name__)

_TICK_WRAP = 2**32
_COMMAND_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class MachineUse:
    """One reading of how the machine is being used, apart from the agent's own work."""

    input_idle_s: float | None  # seconds since the last keyboard or mouse input; None: unknown
    other_users: tuple[str, ...] = ()  # other people signed in at the machine (console or remote desktop)
    others_cpu_percent: float | None = None  # CPU used by programs other than the agent's renders


class InputIdleReader(Protocol):
    def __call__(self) -> float | None: ...


class MachineUseReader(Protocol):
    def read(self, own_pids: Iterable[int]) -> MachineUse: ...


# -- Windows ---------------------------------------------------------------------------------------
def idle_from_ticks(now_ticks: int, last_input_ticks: int) -> float:
    """Seconds between two 32-bit millisecond tick counts, across a wrap of the counter."""
    return ((now_ticks - last_input_ticks) % _TICK_WRAP) / 1000.0


def windows_input_idle() -> float | None:
    class LASTINPUTINFO(ctypes.Structure):
        _fields_ = [("cbSize", ctypes.c_uint32), ("dwTime", ctypes.c_uint32)]

    try:
        user32 = ctypes.WinDLL("user32")  # type: ignore[attr-defined]
        kernel32 = ctypes.WinDLL("kernel32")  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    info = LASTINPUTINFO()
    info.cbSize = ctypes.sizeof(info)
    if not user32.GetLastInputInfo(ctypes.byref(info)):
        return None  # e.g. a service in session 0 has no input to ask about
    kernel32.GetTickCount.restype = ctypes.c_uint32
    return idle_from_ticks(kernel32.GetTickCount(), info.dwTime)


# -- macOS -----------------------------------------------------------------------------------------
_HID_IDLE = re.compile(rb'"HIDIdleTime"\s*=\s*(\d+)')


def parse_ioreg_idle(output: bytes) -> float | None:
    """Seconds from ``ioreg -c IOHIDSystem`` output (HIDIdleTime is in nanoseconds)."""
    match = _HID_IDLE.search(output)
    return int(match.group(1)) / 1e9 if match else None


def macos_input_idle(run: Callable[[list[str]], bytes] | None = None) -> float | None:
    output = _run(["ioreg", "-c", "IOHIDSystem", "-d", "4", "-r", "-k", "HIDIdleTime"], run)
    return parse_ioreg_idle(output) if output is not None else None


# -- Linux: X11 --------------------------------------------------------------------------------------
class _XScreenSaverInfo(ctypes.Structure):
    _fields_ = [("window", ctypes.c_ulong), ("state", ctypes.c_int), ("kind", ctypes.c_int),
                ("til_or_since", ctypes.c_ulong), ("idle", ctypes.c_ulong), ("eventMask", ctypes.c_ulong)]


class X11InputIdle:
    """Idle time of one X display through libXss. Keeps the connection open between readings."""

    def __init__(self, display: str | None = None) -> None:
        self._name = display if display is not None else os.environ.get("DISPLAY", "")
        self._display: int | None = None
        self._xlib: ctypes.CDLL | None = None
        self._xss: ctypes.CDLL | None = None
        self._info: Any = None  # a pointer to the XScreenSaverInfo libXss allocated
        self._root = 0

    def __call__(self) -> float | None:
        if not self._name:
            return None
        if (self._display is None and not self._open()) or self._xss is None:
            return None
        if not self._xss.XScreenSaverQueryInfo(self._display, self._root, self._info):
            return None
        return float(self._info.contents.idle) / 1000.0

    def _open(self) -> bool:
        try:
            xlib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
            xss = ctypes.CDLL(ctypes.util.find_library("Xss") or "libXss.so.1")
        except OSError:
            return False
        xlib.XOpenDisplay.restype = ctypes.c_void_p
        xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        xlib.XDefaultRootWindow.restype = ctypes.c_ulong
        xlib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
        xss.XScreenSaverQueryInfo.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_XScreenSaverInfo)]
        xss.XScreenSaverQueryInfo.restype = ctypes.c_int
        display = xlib.XOpenDisplay(self._name.encode())
        if not display:
            return False
        self._xlib, self._xss, self._display = xlib, xss, display
        self._root = xlib.XDefaultRootWindow(display)
        self._info = xss.XScreenSaverAllocInfo()
        return True

    def close(self) -> None:
        if self._display is not None and self._xlib is not None:
            self._xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
            self._xlib.XCloseDisplay(self._display)
            self._display = None


# -- Linux: logind -------------------------------------------------------------------------------------
def parse_loginctl_idle(output: bytes, now_realtime_s: float) -> float | None:
    """Seconds idle from ``loginctl show-session -p IdleHint -p IdleSinceHint`` of one or more sessions.

    A session that is not idle means 0; the machine is as idle as its least idle session.
    """
    idle_values: list[float] = []
    for block in output.split(b"\n\n"):
        fields = dict(line.split(b"=", 1) for line in block.splitlines() if b"=" in line)
        hint = fields.get(b"IdleHint")
        if hint is None:
            continue
        if hint.strip() != b"yes":
            idle_values.append(0.0)
            continue
        since_us = fields.get(b"IdleSinceHint", b"0").strip()
        if not since_us.isdigit() or int(since_us) == 0:
            continue
        idle_values.append(max(0.0, now_realtime_s - int(since_us) / 1e6))
    return min(idle_values) if idle_values else None


class LogindInputIdle:
    """logind's idle hint, asked at most every ``min_interval_s`` (two ``loginctl`` runs per asking).

    The hint changes only after the desktop's own idle delay, so asking more
    often buys nothing; where logind is not there (containers, no systemd)
    it is not asked again.
    """

    def __init__(self, run: Callable[[list[str]], bytes] | None = None, min_interval_s: float = 10.0) -> None:
        self._run = run
        self._min_interval_s = min_interval_s
        self._asked_at = -1e9
        self._last: float | None = None
        self._available = True

    def __call__(self) -> float | None:
        if not self._available:
            return None
        now = time.monotonic()
        if now - self._asked_at < self._min_interval_s:
            return None if self._last is None else self._last + (now - self._asked_at)
        self._asked_at = now
        sessions = _run(["loginctl", "list-sessions", "--no-legend"], self._run)
        if sessions is None:
            self._available = False
            log.info("no logind here: input idle time unknown (signed-in users and CPU still count)")
            return None
        self._last = logind_input_idle(self._run, sessions)
        return self._last


def logind_input_idle(run: Callable[[list[str]], bytes] | None = None,
                      sessions: bytes | None = None) -> float | None:
    sessions = sessions if sessions is not None else _run(["loginctl", "list-sessions", "--no-legend"], run)
    if not sessions:
        return None
    ids = [line.split()[0].decode(errors="replace") for line in sessions.splitlines() if line.split()]
    if not ids:
        return None
    shown = _run(["loginctl", "show-session", *ids, "-p", "IdleHint", "-p", "IdleSinceHint"], run)
    return parse_loginctl_idle(shown, time.time()) if shown else None


# -- the default reader ------------------------------------------------------------------------------------
def default_input_idle() -> InputIdleReader:
    """The input-idle reader for this OS (see the module docstring)."""
    if sys.platform == "win32":
        return windows_input_idle
    if sys.platform == "darwin":
        return macos_input_idle
    logind = LogindInputIdle()
    if os.environ.get("DISPLAY"):
        x11 = X11InputIdle()

        def x11_then_logind() -> float | None:
            value = x11()
            return value if value is not None else logind()

        return x11_then_logind
    return logind


def other_interactive_users(me: str) -> tuple[str, ...]:
    """Names of other users signed in at the machine: console, X display, remote desktop.

    A terminal session from another machine (ssh: the entry names a remote
    host) is not someone at this machine. Windows lists console and remote
    desktop sessions only, without a host.
    """
    try:
        names = {u.name for u in psutil.users() if u.name and (not u.host or u.host.startswith(":"))}
    except (psutil.Error, OSError):
        return ()
    mine = me.casefold().split("\\")[-1]
    return tuple(sorted(n for n in names if n.casefold().split("\\")[-1] != mine))


class OthersCpu:
    """CPU used by everything except our own processes, in percent of the whole machine, between readings."""

    def __init__(self) -> None:
        self._last: tuple[float, float, float] | None = None  # (wall, busy total, ours)

    def sample(self, own_pids: Iterable[int]) -> float | None:
        wall = time.monotonic()
        times = psutil.cpu_times()
        busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        ours = 0.0
        for pid in own_pids:
            try:
                t = psutil.Process(pid).cpu_times()
                ours += t.user + t.system
            except psutil.Error:
                continue
        last, self._last = self._last, (wall, busy, ours)
        if last is None or wall - last[0] <= 0:
            return None
        # Our own renders that ended between readings make "ours" drop: never count that as others.
        others = max(0.0, (busy - last[1]) - max(0.0, ours - last[2]))
        return min(100.0, 100.0 * others / ((wall - last[0]) * (psutil.cpu_count() or 1)))


class SystemMachineUse:
    """The real reader: OS input idle time, other signed-in users, other programs' CPU."""

    def __init__(self, me: str, input_idle: InputIdleReader | None = None) -> None:
        self._me = me
        self._input_idle = input_idle or default_input_idle()
        self._cpu = OthersCpu()

    def read(self, own_pids: Iterable[int]) -> MachineUse:
        try:
            idle = self._input_idle()
        except Exception as exc:  # a reader that breaks must not stop the watcher
            log.debug("input idle reader failed: %s", exc)
            idle = None
        return MachineUse(idle, other_interactive_users(self._me), self._cpu.sample(own_pids))


def _run(argv: list[str], run: Callable[[list[str]], bytes] | None) -> bytes | None:
    if run is not None:
        return run(argv)
    try:
        return subprocess.run(argv, capture_output=True, timeout=_COMMAND_TIMEOUT_S, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
