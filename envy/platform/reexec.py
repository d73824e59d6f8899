"""Start the agent again with fresh code and config (``restart()``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import NoReturn

from envy.platform.host import os_name

EXIT_RESTART = 75  # the launcher's "start me again" (envy/app/launcher_main.py)


def reexec(argv: Sequence[str]) -> NoReturn:
    """Replace this process with ``python -m envy ARGV``.

    POSIX has a real exec. Windows' ``os.execv`` starts a new process and exits
    the old one, which detaches it from the console; a plain child process and
    a clean exit does the same thing, more predictably.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if os.environ.get("ENVY_APP_LAUNCHER"):
        # Run from the share copy: its launcher starts the current version again (which
        # may be newer than this one); `python -m envy` would not even be importable there.
        sys.exit(EXIT_RESTART)
    command = [sys.executable, "-m", "envy", *argv]
    if os_name() == "windows":
        subprocess.Popen(command, close_fds=True)
        sys.exit(0)
    os.execv(sys.executable, command)
