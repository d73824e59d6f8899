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

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from envy.protocol.liveness import LivenessTracker, ObservationCache
from envy.protocol.status import AgentStatus
from envy.render.jobs import list_jobs
from envy.render.overview import JobSummary, summarize
from envy.render.remap import PathRemap
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy_io.agents import ALIVE, AgentBoard, AgentView, agent_json, idle_in_render_mode

# The monitor's sightings are saved this often, for ``envy-io status`` run elsewhere meanwhile.
SAVE_EVERY_S = 5.0


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
    """What the monitor shows, from one read of the status files and the job folders per refresh.

    Liveness is the board's (envy_io/agents.py), the same verdict as ``envy-io status``:
    a host known stale is shown stale from the first screen. Host rows come from
    status files, which lag up to a heartbeat behind the item names the job rows
    count: a worker still showing a frame of a job with nothing running is
    shown finished, not at its last percent.
    """

    def __init__(self, layout: ShareLayout, dead_after: float, remap: PathRemap, fs: ShareFS,
                 cache: ObservationCache | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.layout = layout
        self.fs = fs
        self.remap = remap
        self.board = AgentBoard(layout, dead_after, cache, fs=fs, clock=clock)
        self.rates = RateTracker()
        self.summaries: list[JobSummary] = []
        self._saved_at = -SAVE_EVERY_S

    @property
    def tracker(self) -> LivenessTracker:
        return self.board.tracker

    @property
    def statuses(self) -> list[AgentStatus]:
        return [view.status for view in self.board.views()]

    def refresh(self) -> None:
        self.board.refresh()
        jobs, _ = list_jobs(self.layout, self.fs)
        self.summaries = [
            summarize(self.layout, j, self.remap, self.fs, reasons=False) for j in jobs if j.state != "cancelled"
        ]
        now = self.tracker.clock()
        if now - self._saved_at >= SAVE_EVERY_S:  # so ``envy-io status`` elsewhere knows what we saw
            self._saved_at = now
            self.board.save()

    def close(self) -> None:
        """Keep what we saw for the next run (of the monitor or of ``envy-io status``)."""
        self.board.save()

    def host_state(self, view: AgentView) -> str:
        state = "idle" if idle_in_render_mode(view.status) else view.status.state  # WORK says why
        return state if view.verdict == ALIVE else f"{state} ({view.verdict})"

    def all_done(self) -> bool:
        return bool(self.summaries) and all(
            s.pending == 0 and s.running == 0 for s in self.summaries if s.job.state == "active"
        )

    def to_json(self) -> dict[str, Any]:
        return {"agents": [agent_json(view) for view in self.board.views()],
                "jobs": [summary.to_json() for summary in self.summaries]}

    def lines(self, width: int = 100, height: int | None = None) -> list[str]:
        """The screen; with ``height``, rows that do not fit end in ``+N more``."""
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
        out += [row for view in self.board.views() for row in self._host_rows(view)]
        return fit_height([line[:width] for line in out], height)

    def _host_rows(self, view: AgentView) -> list[str]:
        st, state = view.status, self.host_state(view)
        running = {s.job.id: s.running for s in self.summaries}
        busy = [w for w in st.workers if w.frame]
        if not busy:
            # The work column is for work: a print() message is not what the host is doing.
            return [f"{st.host:<18} {state:<18} {st.locked_reason or st.work}"]
        rows = []
        for w in busy:
            if running.get(str(w.job), 1) == 0:
                detail = "finished"  # the job's items say nothing runs: this status is a heartbeat behind
            else:
                pct = f"{w.percent:5.1f}%" if w.percent is not None else "   -- "
                detail = f"{pct} {format_duration(w.elapsed_s)}"
            rows.append(f"{st.host:<18} {state:<18} w{w.index} {w.frame} {detail}")
        return rows


def fit_height(lines: list[str], height: int | None) -> list[str]:
    """Cut ``lines`` to ``height`` rows, the last saying how many did not fit."""
    if height is None or len(lines) <= height:
        return lines
    keep = max(height - 1, 1)
    return [*lines[:keep], f"+{len(lines) - keep} more (make the terminal taller to see them)"]


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
                stream: TextIO | None = None, as_json: bool = False) -> int:
    out = stream or sys.stdout
    if once:
        model.refresh()
        model.close()
        out.write((json.dumps(model.to_json(), indent=2) if as_json else "\n".join(model.lines())) + "\n")
        return 0
    screen = LineScreen(out)
    try:
        while True:
            model.refresh()
            if screen.tty:
                size = shutil.get_terminal_size()
                screen.draw(model.lines(size.columns, size.lines))
            else:
                screen.draw(model.lines())
            if until_done and model.all_done():
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
    finally:
        screen.close()
        model.close()
