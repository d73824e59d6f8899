"""The heartbeat: one status write per interval, with everything folded in.

Progress of every worker is folded into the one status file instead of more
files, so network traffic does not grow with the number of frames.

Ownership: the heartbeat thread alone writes ``counter`` and the status file;
what it writes is the agent's ``snapshot()``, a fresh value each beat. The
first and last beats run on the polling thread while the heartbeat thread is
not running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from envy.loop_guard import LoopGuard
from envy.protocol.status import AgentStatus, write_status
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.share.share_clock import ShareClock, stat_mtime
from envy.share.temp_cleanup import remove_old_temp_files

log = logging.getLogger(__name__)

# How often (in beats) the agent re-reads its status file's mtime to follow
# the file server's clock: clocks drift slowly, and each look is one stat.
CLOCK_EVERY_BEATS = 60
# How often (in beats) the agent looks for temp files a crashed run left of its status file.
TEMP_CLEANUP_EVERY_BEATS = 60


class Heartbeat(threading.Thread):
    def __init__(
        self,
        layout: ShareLayout,
        fs: ShareFS,
        interval: Callable[[], float],
        snapshot: Callable[[], AgentStatus],
        share_ok: Callable[[], bool],
        share_clock: ShareClock | None = None,
        seal: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(name="envy-heartbeat", daemon=True)
        self.layout = layout
        self.fs = fs
        self.interval = interval  # read at each beat: a reload() changes the rate at once
        self.snapshot = snapshot
        self.share_ok = share_ok
        self.stopped = threading.Event()
        self.counter = 0
        self._failing = False
        self.share_clock = share_clock  # learns the server's time from our own writes
        self.seal = seal  # signed mode: the farm key's seal on every status written

    def beat(self) -> None:
        # Never write into an unmounted mount point. But do not wait for the polling
        # loop to notice the share is back either: after an outage its backoff can be
        # longer than dead_after, and an agent silent that long has its frames taken
        # over while it renders them (issue 14). One stat of the sentinel per beat,
        # only while the share is thought away.
        if not self.share_ok() and not self.layout.is_mounted(self.fs):
            return
        self.counter += 1
        status = self.snapshot()
        status.counter = self.counter
        try:
            written_at = time.time()
            write_status(self.layout, status, self.fs, self.seal)
            if self.share_clock is not None and (
                self.counter % CLOCK_EVERY_BEATS == 1 or not self.share_clock.measured
            ):
                mtime = stat_mtime(self.layout.status_file(status.host), self.fs)
                if mtime is not None:
                    self.share_clock.learn(mtime, written_at)
            if self.counter % TEMP_CLEANUP_EVERY_BEATS == 2 and self.share_clock is not None:
                # The agent owns its status file: it removes what a crashed run left of it
                # (one listing of status/ every few minutes; share_layout.md, temp files).
                name = self.layout.status_file(status.host).name
                remove_old_temp_files(self.layout.status_dir, self.fs, self.share_clock.now(), {name})
            if self._failing:
                log.info("status file is writable again")
            self._failing = False
        except OSError as exc:
            if not self._failing:
                log.warning(
                    "cannot write status file %s: %s (will retry each beat)", self.layout.status_file(status.host), exc
                )
            self._failing = True

    def run(self) -> None:
        guard = LoopGuard("the heartbeat", log)
        while not self.stopped.is_set():
            try:
                self.beat()
                guard.ok()
            except Exception as exc:  # the heartbeat must never die (MemoryError included)
                guard.failed(exc)
            # No longer than one interval even while failing: a slower heartbeat would
            # make the other agents take over this one's frames.
            self.stopped.wait(self.interval())

    def stop(self) -> None:
        self.stopped.set()
