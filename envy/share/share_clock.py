"""The file server's clock, as seen through the share: issue times and ages agree across machines.

A command's age is "now" minus its issue time. If the shell stamped the issue
time with its own clock and the agent judged it with its own, an agent ten
minutes ahead would think every new command already expired (and one behind
would replay old ones). Both sides instead use the file server's clock: the
mtime of a file one has just written is the server's time of that write.

* Envy IO writes a tiny probe file before stamping and uses its mtime as the
  issue time (a few operations per send; sends are rare).
* An agent learns the offset between its clock and the server's from the
  mtime of the status file it has just written (one stat every few minutes).

Where the share sets no server time (a local folder) the offset is simply ~0.
Timestamps with 2 s resolution (FAT-like shares) are far finer than command
lifetimes (minutes).
"""

from __future__ import annotations


import threading
import time
from pathlib import Path
from typing import Callable

from envy.share.fs import ShareFS
from envy.share.names import temp_name_for


class ShareClock:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.offset = 0.0  # server time minus our time
        self.measured = False
        self._lock = threading.Lock()

    def learn(self, written_mtime: float, written_at_local: float) -> None:
        """Record the server's mtime of a file we wrote at ``written_at_local`` (our clock)."""
        with self._lock:
            self.offset = written_mtime - written_at_local
            self.measured = True

    def now(self) -> float:
        """Our best estimate of the file server's time now."""
        return self.clock() + self.offset


def probe_share_time(folder: Path, fs: ShareFS) -> float:
    """The server's time now: write a tiny temp file in ``folder``, read its mtime, remove it."""
    probe = Path(folder) / temp_name_for("clock-probe")
    fs.write_new(probe, b"")
    try:
        return fs.stat(probe).st_mtime
    finally:
        try:
            fs.unlink(probe)
        except OSError:
            pass


def stat_mtime(path: Path, fs: ShareFS) -> float | None:
    try:
        return fs.stat(path).st_mtime
    except OSError:
        return None



