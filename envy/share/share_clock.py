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

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from envy.share.fs import ShareFS
from envy.share.names import temp_name_for

# The offset is the median of the last few samples, so one file whose mtime
# someone moved (``touch -d tomorrow``) cannot shift it (Must-hold 10).
SAMPLES_KEPT = 7
MIN_SAMPLES = 3  # until then ``measured`` stays False, so the heartbeat samples at each beat
# Once measured, the offset moves at most this far per sample: a real server
# clock drifts by milliseconds; a sudden jump is more likely a tampered mtime.
MAX_STEP_S = 60.0
# No lab machine is a day off the file server: such a sample is refused outright.
MAX_OFFSET_S = 86400.0


class ShareClock:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.offset = 0.0  # server time minus our time
        self.measured = False
        self.rejected = 0  # samples refused as too far off (for logs and tests)
        self._samples: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self._lock = threading.Lock()

    def learn(self, written_mtime: float, written_at_local: float) -> None:
        """Record the server's mtime of a file we wrote at ``written_at_local`` (our clock)."""
        sample = written_mtime - written_at_local
        if not abs(sample) <= MAX_OFFSET_S:  # also refuses NaN
            self.rejected += 1
            return
        with self._lock:
            self._samples.append(sample)
            target = statistics.median(self._samples)
            if len(self._samples) < MIN_SAMPLES:
                self.offset = target
                return
            if not self.measured:
                self.offset, self.measured = target, True
                return
            step = max(-MAX_STEP_S, min(MAX_STEP_S, target - self.offset))
            self.offset += step

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



