"""An operating-system notification ("toast") on this machine, where one is simple to show.

Linux: ``notify-send`` when a desktop session is there (DISPLAY, WAYLAND_DISPLAY or a
session bus). macOS: ``osascript``'s ``display notification``, with the text
passed as arguments to the script, never pasted into it. Windows 10 and 11:
PowerShell's WinRT toast API under PowerShell's own app id (a toast needs an
app id the Start menu knows, and Envy installs none); the text goes in
environment variables and becomes XML text nodes, never script or markup.
The Windows route is written from Microsoft's documentation and has not run
here (no Windows machine). Envy IO prints the line above its prompt in every
case, so nothing is lost where this returns False.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from envy.platform.host import os_name

_TIMEOUT_S = 5.0
_WINDOWS_TIMEOUT_S = 15.0  # PowerShell takes seconds to start on a busy lab machine
# Constant: the title and text arrive as $env:ENVY_TOAST_TITLE / $env:ENVY_TOAST_TEXT.
_WINDOWS_SCRIPT = "; ".join([
    "$ErrorActionPreference = 'Stop'",
    "$null = [Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, "
    "ContentType = WindowsRuntime]",
    "$m = [Windows.UI.Notifications.ToastNotificationManager]",
    "$x = $m::GetTemplateContent([Windows.UI.Notifications.ToastTemplateType]::ToastText02)",
    "$t = $x.GetElementsByTagName('text')",
    "$null = $t.Item(0).AppendChild($x.CreateTextNode($env:ENVY_TOAST_TITLE))",
    "$null = $t.Item(1).AppendChild($x.CreateTextNode($env:ENVY_TOAST_TEXT))",
    "$id = '{1AC14E77-02E7-4E5D-B744-2EB1AE5198B7}\\WindowsPowerShell\\v1.0\\powershell.exe'",
    "$m::CreateToastNotifier($id).Show([Windows.UI.Notifications.ToastNotification]::new($x))",
])
_MAC_SCRIPT = ["-e", "on run argv", "-e", "display notification (item 2 of argv) with title (item 1 of argv)",
               "-e", "end run"]


def show_desktop_notice(title: str, text: str) -> bool:
    """Show ``text`` under ``title``; True when the OS took it."""
    system = os_name()
    env = None
    timeout = _TIMEOUT_S
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
    elif system == "windows":
        exe = shutil.which("powershell.exe") or shutil.which("powershell")
        if not exe:
            return False
        argv = [exe, "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command", _WINDOWS_SCRIPT]
        env = {**os.environ, "ENVY_TOAST_TITLE": title, "ENVY_TOAST_TEXT": text}
        timeout = _WINDOWS_TIMEOUT_S
    else:
        return False
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False,
                              env=env)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
