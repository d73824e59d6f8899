"""What Envy IO knows about the agents: their status files and whether each is alive.

Alive means "we watched its heartbeat counter change, on our own monotonic
clock, less than ``dead_after`` seconds ago" (ENGINEERING §1.5). We never
compare file times or times written by agents with our clock. A one-shot
``envy-io status`` has seen nothing change yet, so it keeps its sightings in a
local cache between runs and, for agents it cannot vouch for, re-reads just
their status files for a few seconds to watch their counters move.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envy.protocol.liveness import LivenessTracker, ObservationCache
from envy.protocol.status import AgentStatus, read_statuses
from envy.share.atomic import read_json
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

# Status files are re-read this often while waiting for heartbeats.
RECHECK_INTERVAL_S = 0.3
# The default wait is one heartbeat plus this margin, never more than the cap.
WAIT_MARGIN_S = 1.0
MAX_DEFAULT_WAIT_S = 15.0
# Progress of at most this many workers is shown on one status line.
WORKERS_SHOWN = 4


# What Envy IO says about an agent. "checking": not seen beating yet, but not watched for a
# whole heartbeat of its own either; everything else not seen beating is stale, at once.
ALIVE, STALE, CHECKING = "alive", "stale", "checking"
# Its status changed in a way beats cannot (someone else writes it, liveness.py): neither alive nor dead.
SUSPECT = "suspect"


@dataclass(frozen=True)
class AgentView:
    status: AgentStatus
    alive: bool
    silent_s: float | None  # seconds since we last saw its counter change; None if never seen
    verdict: str = STALE  # ALIVE, STALE, CHECKING or SUSPECT


class AgentBoard:
    """The latest status of every agent plus our own liveness sightings; safe to share between threads."""

    def __init__(
        self,
        layout: ShareLayout,
        dead_after: float,
        cache: ObservationCache | None = None,
        *,
        fs: ShareFS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.layout = layout
        self.fs = fs
        self.cache = cache
        self.tracker = LivenessTracker(dead_after, clock)
        self._statuses: dict[str, AgentStatus] = {}
        self._lock = threading.Lock()
        if cache is not None:
            cache.load(self.tracker)
        # What the saved sightings said, and when this board first read each host: a host
        # whose counter moved since the saved look beat after it (the tracker dates that beat
        # at the old look, issue 14), so it is worth a heartbeat's wait; one that did not is stale at once.
        self._saved = {key: (seen.nonce, seen.counter) for key, seen in self.tracker.sightings.items()}
        self._first_read: dict[str, float] = {}

    def refresh(self) -> list[str]:
        """Re-read every status file and record what changed; returns warnings about unreadable files."""
        statuses, warnings = read_statuses(self.layout, self.fs)
        with self._lock:
            self._statuses = {}
            for status in statuses:
                self._record(status)
        return warnings

    def hosts(self) -> list[str]:
        with self._lock:
            return sorted(s.host for s in self._statuses.values())

    def undecided(self) -> list[str]:
        """Hosts worth waiting for: not seen beating yet, and not yet watched for a heartbeat of their own.

        A host already known stale (from this run, the saved sightings of earlier
        runs and of the monitor, or its own last status: ``stopped``) is never
        waited for: in a lab, some machine is always off (issue 11).
        """
        with self._lock:
            return [key for key, status in self._statuses.items() if self._verdict(key, status) == CHECKING]

    def views(self) -> list[AgentView]:
        with self._lock:
            verdicts = {key: self._verdict(key, status) for key, status in self._statuses.items()}
            return [
                AgentView(status, verdicts[key] == ALIVE, self.tracker.silent_for(key), verdicts[key])
                for key, status in sorted(self._statuses.items())
            ]

    def forget(self, host: str) -> None:
        """Drop a host from what this board knows (``envy-io forget``); its next status file brings it back."""
        with self._lock:
            self._statuses.pop(host.lower(), None)
            self.tracker.sightings.pop(host.lower(), None)
            self._first_read.pop(host.lower(), None)

    def _record(self, status: AgentStatus) -> None:
        """Under the lock: the latest status of a host, and one more look at its counter."""
        key = status.host.lower()
        self._statuses[key] = status
        self._first_read.setdefault(key, self.tracker.clock())
        self.tracker.observe(key, status.nonce, status.counter, heartbeat_of(status))

    def _verdict(self, key: str, status: AgentStatus) -> str:
        if self.tracker.is_suspect(key):
            return SUSPECT
        if status.state == "stopped":
            return STALE  # its last word was that it stopped
        if self.tracker.proven_alive(key):
            return ALIVE
        moved = self._saved.get(key) != (status.nonce, status.counter)
        if moved:  # new to us, or it beat since the saved look: watch it for a heartbeat of its own
            watched: float | None = self.tracker.clock() - self._first_read.get(key, self.tracker.clock())
        else:  # the same counter as when we last looked, in an earlier run or the monitor
            watched = self.tracker.silent_for(key)
        if watched is None:
            return STALE
        return CHECKING if watched < heartbeat_of(status) + WAIT_MARGIN_S else STALE

    def default_wait(self) -> float:
        """Long enough to see one heartbeat of the slowest agent: its interval plus a margin, capped."""
        with self._lock:
            beats = [heartbeat_of(s) for s in self._statuses.values()]
        if not beats:
            return 0.0
        return min(max(beats) + WAIT_MARGIN_S, MAX_DEFAULT_WAIT_S)

    def wait_for_heartbeats(
        self,
        timeout: float,
        stop: threading.Event | None = None,
        interval: float = RECHECK_INTERVAL_S,
    ) -> list[str]:
        """Re-read status files until every agent is proven alive or ``timeout`` passes; returns warnings."""
        stop = stop or threading.Event()
        deadline = self.tracker.clock() + timeout
        warnings: list[str] = []
        while True:
            undecided = self.undecided()
            left = deadline - self.tracker.clock()
            if not undecided or left <= 0 or stop.wait(min(interval, left)):
                return warnings
            warnings += self.refresh_hosts(undecided)

    def refresh_hosts(self, hosts: list[str]) -> list[str]:
        """Re-read only these agents' status files (while waiting, the others need no traffic)."""
        warnings: list[str] = []
        for host in hosts:
            path = self.layout.status_file(host)
            try:
                status = AgentStatus.from_json(read_json(path, self.fs))
            except FileNotFoundError:
                continue  # being replaced right now, or the agent was removed: keep what we have
            except (OSError, ValueError, TypeError) as exc:
                warnings.append(f"skipped status file {path.name}: {exc}")
                continue
            with self._lock:
                self._record(status)
        return warnings

    def save(self) -> None:
        if self.cache is not None:
            with self._lock:
                self.cache.save(self.tracker)


def heartbeat_of(status: AgentStatus) -> float:
    """The agent's own heartbeat interval as it wrote it, capped; 0 when the field is unusable."""
    beat = status.heartbeat
    if isinstance(beat, bool) or not isinstance(beat, (int, float)) or not beat > 0:
        return 0.0
    return min(float(beat), MAX_DEFAULT_WAIT_S)


def observation_cache(state_dir: Path) -> ObservationCache:
    return ObservationCache(state_dir / "io-observations.json")


def format_agent(index: int, view: AgentView) -> str:
    """``Worker 0 - lab3-03 - 192.168.1.11 - idle`` (the Frame Server's style), plus what it is doing."""
    status = view.status
    line = f"Worker {index} - {status.host} - {status.ip or '?'} - {describe_state(status)}"
    return line if view.verdict == ALIVE else f"{line} ({view.verdict})"


def idle_in_render_mode(status: AgentStatus) -> bool:
    """Render mode is on but nothing is claimable now: the queue is empty, or what is left waits for
    other jobs (envy/render/render_loop.py). People call that idle."""
    return status.state == "rendering" and not any(w.job for w in status.workers) and (
        status.work == "queue empty" or status.work.startswith("waiting: "))


def describe_state(status: AgentStatus) -> str:
    state = status.state or "unknown"
    if state == "locked":
        return f"locked ({status.locked_reason})" if status.locked_reason else state
    if state == "paused":
        return status.work or state  # "paused: someone is using this machine"
    if state == "stopped":
        return status.message or state  # "stopped: SIGTERM (sign-out, shut-down or kill)"
    if state not in ("rendering", "busy"):
        return state
    if idle_in_render_mode(status):
        return f"idle ({status.work.removeprefix('waiting: ')})"  # "queue empty", or what is left waits for
    detail = [status.work] if status.work else []
    progress = [_describe_worker(w) for w in status.workers[:WORKERS_SHOWN] if w.job or w.frame]
    if len(status.workers) > WORKERS_SHOWN:
        progress.append(f"+{len(status.workers) - WORKERS_SHOWN} more")
    if progress:
        detail.append("[" + ", ".join(progress) + "]")
    return " ".join([state, *detail])


def _describe_worker(worker: Any) -> str:
    parts = [f"w{worker.index}"]
    if worker.job:
        parts.append(str(worker.job))
    if worker.frame is not None:
        parts.append(f"frame {worker.frame}")
    if isinstance(worker.percent, (int, float)):
        parts.append(f"{worker.percent:.0f}%")
    return " ".join(parts)


def agent_json(view: AgentView) -> dict[str, Any]:
    data = view.status.to_json()
    data["alive"] = view.alive
    data["verdict"] = view.verdict
    data["silent_s"] = None if view.silent_s is None else round(view.silent_s, 1)
    return data
