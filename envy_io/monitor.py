"""``envy-io monitor``: live progress of every host and job.

The view is a list of text lines built from the status files (progress is
folded into them, so this reads one file per agent) and the job folders.
On a terminal only the lines that changed are redrawn, by moving the cursor
to them, so the screen never flickers; elsewhere (a pipe, a log file) a new
snapshot is printed only when something changed. ``--once`` prints one
snapshot for scripts.

Liveness as ``envy-io status`` judges it (envy_io/agents.py): a host is shown
alive only once we have watched its counter change, and the monitor keeps its
sightings in the same local cache as ``status`` between runs, so a host killed
while nobody watched is not taken for alive by the next run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from envy.protocol.liveness import LivenessTracker, ObservationCache
from envy.protocol.status import AgentStatus, read_statuses
from envy.render.jobs import list_jobs
from envy.render.overview import JobSummary, summarize
from envy.render.remap import PathRemap
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@dataclass
class RateTracker:
    """Frames per second per job, from done counts seen changing on our own clock."""

    clock: Callable[[], float] = time.monotonic
    first: dict[str, tuple[float, int]] = field(default_factory=dict)

    def rate(self, job_id: str, done: int) -> float | None:
        now = self.clock()
        start = self.first.setdefault(job_id, (now, done))
        elapsed, gained = now - start[0], done - start[1]
        return gained / elapsed if elapsed > 0 and gained > 0 else None


class MonitorModel:
    def __init__(self, layout: ShareLayout, dead_after: float, remap: PathRemap, fs: ShareFS,
                 cache: ObservationCache | None = None) -> None:
        self.layout = layout
        self.fs = fs
        self.remap = remap
        self.tracker = LivenessTracker(dead_after)
        self.cache = cache
        if cache is not None:
            cache.load(self.tracker)
        self.rates = RateTracker()
        self.statuses: list[AgentStatus] = []
        self.summaries: list[JobSummary] = []

    def refresh(self) -> None:
        self.statuses, _ = read_statuses(self.layout, self.fs)
        for s in self.statuses:
            self.tracker.observe(s.host, s.nonce, s.counter)
        jobs, _ = list_jobs(self.layout, self.fs)
        self.summaries = [
            summarize(self.layout, j, self.remap, self.fs, reasons=False) for j in jobs if j.state != "cancelled"
        ]

    def close(self) -> None:
        """Keep what we saw for the next run (of the monitor or of ``envy-io status``)."""
        if self.cache is not None:
            self.cache.save(self.tracker)

    def host_state(self, status: AgentStatus) -> str:
        if self.tracker.proven_alive(status.host):
            return status.state
        if self.tracker.is_alive(status.host):
            return f"{status.state} (checking)"  # within the first-sighting grace: not seen beating yet
        return f"{status.state} (stale)"

    def all_done(self) -> bool:
        return bool(self.summaries) and all(
            s.pending == 0 and s.running == 0 for s in self.summaries if s.job.state == "active"
        )

    def lines(self, width: int = 100) -> list[str]:
        out = [f"Envy monitor  {self.layout.root}  {time.strftime('%H:%M:%S')}   (Ctrl-C to leave)", ""]
        out.append(f"{'JOB':<34} {'STATE':<9} {'DONE':>11} {'RUN':>4} {'FAIL':>4} {'%':>5} {'ETA':>8}")
        if not self.summaries:
            out.append("  (no jobs; submit one with: envy-io submit FOLDER)")
        for s in self.summaries:
            rate = self.rates.rate(s.job.id, s.done)
            left = s.pending + s.running
            eta = 0.0 if left == 0 else (left / rate if rate else None)
            out.append(
                f"{s.job.name[:34]:<34} {s.job.state:<9} {f'{s.done}/{s.total}':>11} {s.running:>4} {s.failed:>4} "
                f"{s.percent:>4.0f}% {format_duration(eta):>8}"
            )
        out += ["", f"{'HOST':<18} {'STATE':<18} {'WORK'}"]
        for st in sorted(self.statuses, key=lambda s: s.host):
            state = self.host_state(st)
            busy = [w for w in st.workers if w.frame]
            if not busy:
                detail = st.locked_reason or st.work or st.message
                out.append(f"{st.host:<18} {state:<18} {detail}"[:width])
                continue
            for w in busy:
                pct = f"{w.percent:5.1f}%" if w.percent is not None else "   -- "
                out.append(
                    f"{st.host:<18} {state:<18} w{w.index} {w.frame} {pct} {format_duration(w.elapsed_s)}"[:width]
                )
        return out


class LineScreen:
    """Draws a list of lines, rewriting only those that changed since the last draw."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.previous: list[str] = []

    def draw(self, lines: list[str]) -> None:
        if not self.tty:
            if lines[2:] != self.previous[2:]:  # the clock line alone is not news
                self.stream.write("\n".join(lines) + "\n\n")
                self.stream.flush()
            self.previous = lines
            return
        parts: list[str] = []
        if not self.previous:
            parts.append("\x1b[?25l\x1b[2J")  # hide the cursor, clear once
        for i, line in enumerate(lines):
            if i >= len(self.previous) or self.previous[i] != line:
                parts.append(f"\x1b[{i + 1};1H{line}\x1b[K")
        for i in range(len(lines), len(self.previous)):
            parts.append(f"\x1b[{i + 1};1H\x1b[K")
        if parts:
            self.stream.write("".join(parts))
            self.stream.flush()
        self.previous = lines

    def close(self) -> None:
        if self.tty:
            self.stream.write(f"\x1b[{len(self.previous) + 1};1H\x1b[?25h\n")
            self.stream.flush()


def run_monitor(model: MonitorModel, once: bool = False, interval: float = 1.0, until_done: bool = False,
                stream: TextIO | None = None) -> int:
    out = stream or sys.stdout
    if once:
        model.refresh()
        model.close()
        out.write("\n".join(model.lines()) + "\n")
        return 0
    screen = LineScreen(out)
    try:
        while True:
            model.refresh()
            screen.draw(model.lines())
            if until_done and model.all_done():
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
    finally:
        screen.close()
        model.close()
