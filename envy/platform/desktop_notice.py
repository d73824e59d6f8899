"""An operating-system notification ("toast") on this machine, where one is simple to show.

Linux: ``notify-send`` when a desktop session is there (DISPLAY, WAYLAND_DISPLAY or a
session bus). macOS: ``osascript``'s ``display notification``, with the text
passed as arguments to the script, never pasted into it. Windows: not yet (a
toast needs an app id registered with the Start menu); Envy IO prints the
line above its prompt in every case, so nothing is lost where this returns False.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from envy.platform.host import os_name

_TIMEOUT_S = 5.0
_MAC_SCRIPT = ["-e", "on run argv", "-e", "display notification (item 2 of argv) with title (item 1 of argv)",
               "-e", "end run"]


def show_desktop_notice(title: str, text: str) -> bool:
    """Show ``text`` under ``title``; True when the OS took it."""
    system = os_name()
    if system == "linux":
        exe = shutil.which("notify-send")
        if not exe or not any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS")):
            return False
        argv = [exe, "--app-name=Envy", title, text]
    elif system == "darwin":
        exe = shutil.which("osascript")
        if not exe:
            return False
        argv = [exe, *_MAC_SCRIPT, title, text]
    else:
        return False
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
