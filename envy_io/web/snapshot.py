"""The one reader of the share in an ``envy-io web`` process, and the snapshots it publishes (views.py).

However many browser tabs are open, one :class:`FarmPoller` thread reads the
share, once per poll, what ``envy-io monitor`` reads (every status file,
every job file, one listing per job folder) and publishes the result as an
immutable :class:`Snapshot`. Pages never touch the share for what a
snapshot holds; they are told about each new one by server-sent events.

Extras are read only for jobs someone has open on a job page ("watched"):
a listing of its thumbs/ when finished frames still lack a thumbnail. A
frame's render time comes from the status files read anyway (each agent lists
its last frames done and their times); only for a frame no status names (done
before this process looked) is the job's logs/ listed, at most every
``LOGS_RELIST_S``, and the end of that frame's log read once (it never
changes afterwards).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envy.platform.host import os_name
from envy.render.claims import ItemName, ItemPattern, sort_listing
from envy.render.job_state import FINISHED, progress
from envy.render.jobs import Job
from envy.render.overview import JobSummary, work_folder
from envy.render.remap import PathRemap, RemapError
from envy.render.scene_range import SCENE_OUTPUT
from envy.render.thumbnails import THUMB_EXT, thumbs_dir
from envy.share.names import is_junk
from envy_io.agents import AgentBoard
from envy_io.monitor import RateTracker
from envy_io.web.discovery import FarmReader
from envy_io.web.frame_logs import LOG_NAME_RE, LOG_TAIL_BYTES, Attempt, read_tail
from envy_io.web.views import JobView, Snapshot, host_json, item_json, with_dependency_notes

log = logging.getLogger(__name__)

WATCH_FOR_S = 30.0  # a job page counts as open this long after its last request
# A finished, cancelled or archived job changes only when someone resets or resumes it: its
# folder is listed again this often (and at once after an action from this page).
SETTLED_RELIST_S = 10.0
THUMB_RETRIES = 6  # polls that re-list thumbs/ while finished frames still lack one
# A frame just done is in its agent's next status (one heartbeat, 5 s by default): only a frame
# done longer than this without a time in any status is looked up in the logs.
RECENT_GRACE_S = 15.0
LOGS_RELIST_S = 10.0
_FOOTER_RE = re.compile(rb"=== envy: exit code (-?\d+) after ([0-9.]+) s")


@dataclass
class _JobMemory:
    """What the poller remembers about one job between polls (owned by the poller thread)."""

    thumbs: frozenset[str] = frozenset()
    thumbs_for: frozenset[str] | None = None  # the done set thumbs/ was last listed for
    thumb_retries: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # base (case-folded) -> render time
    first_done: dict[str, float] = field(default_factory=dict)  # base -> clock when first seen done
    looked: bool = False  # the job page's extras were read at least once
    logs_listed_at: float | None = None
    finished_at: float | None = None
    items_key: tuple[Any, ...] = ()
    items_version: int = 0
    listing: Any = None  # the last Listing of the job's folder
    listed_at: float = 0.0
    listed_job: Job | None = None  # the job file as it was at that listing


class FarmPoller(threading.Thread):
    """Reads the share once per ``interval`` and hands each :class:`Snapshot` to ``publish``."""

    def __init__(
        self,
        board: AgentBoard,
        remap: Callable[[Job], PathRemap],
        publish: Callable[[Snapshot], None],
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name="envy-web-poller", daemon=True)
        self.board = board
        self.layout = board.layout
        self.fs = board.fs
        self.remap = remap
        self.publish = publish
        self.interval = interval
        self.clock = clock
        self.stopped = threading.Event()
        self.wake = threading.Event()  # set after an action, so its effect shows at once
        self.rates = RateTracker(clock)
        self.reader = FarmReader(board, clock)
        self._memory: dict[str, _JobMemory] = {}
        self._log_cache: dict[str, tuple[float | None, int | None]] = {}  # logs/ file -> (seconds, exit code)
        self._watched: dict[str, float] = {}  # job id -> clock of the last request (any thread)
        self._watch_lock = threading.Lock()
        self._version = 0
        self.polls = 0

    # -- called from other threads ------------------------------------------------------
    def watch(self, job_id: str) -> None:
        """A job page is open on ``job_id``: read its thumbnails and render times too."""
        with self._watch_lock:
            first = job_id not in self._watched
            self._watched[job_id] = self.clock()
        if first:
            self.wake.set()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()

    def changed(self) -> None:
        """Something was changed from this process (an action): read everything again now."""
        self._fresh = True
        self.wake.set()

    _fresh = False

    # -- the poller thread ---------------------------------------------------------------
    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.publish(self.poll())
            except Exception:
                log.exception("reading the share failed; trying again")
            self.wake.wait(self.interval)
            self.wake.clear()

    def poll(self) -> Snapshot:
        self.polls += 1
        fresh, self._fresh = self._fresh, False
        with self._watch_lock:
            now = self.clock()
            self._watched = {k: t for k, t in self._watched.items() if now - t < WATCH_FOR_S}
            watched = set(self._watched)
        # A page opened on a job this process has not listed yet: list the folders now.
        jobs, warnings = self.reader.read(discover=fresh or not all(self.reader.knows(j) for j in watched))
        agents = self.board.views()
        recent: dict[str, dict[str, float]] = {}  # job id -> base (case-folded) -> seconds
        for view in agents:
            for r in view.status.recent:
                recent.setdefault(r.job, {})[r.frame.casefold()] = r.seconds
        views = tuple(
            self._job_view(job, job.id in watched, fresh, recent.get(job.id, {}))
            for job in sorted(jobs, key=lambda j: j.id)
        )
        views = with_dependency_notes(views)
        self._memory = {k: m for k, m in self._memory.items() if any(v.job.id == k for v in views)}
        hosts = tuple(host_json(v, self.board.tracker.dead_after) for v in agents)
        self._version += 1
        return Snapshot(self._version, time.time(), str(self.layout.root), views, hosts, tuple(dict.fromkeys(warnings)))

    def _job_view(
        self, job: Job, watched: bool, fresh: bool = False, recent: dict[str, float] | None = None
    ) -> JobView:
        memory = self._memory.setdefault(job.id, _JobMemory())
        memory.seconds.update(recent or {})
        try:
            remap = self.remap(job)
        except RemapError as exc:
            return self._view(job, memory, JobSummary(job, error=str(exc)), (), "")
        folder = work_folder(self.layout, job, remap)
        output = job.output and remap.apply(job.output, os_name()) or (str(folder) if job.kind == "frames" else "")
        if not output and isinstance(job.settings.get(SCENE_OUTPUT), str):
            output = job.settings[SCENE_OUTPUT]  # a .blend writes where it says (//: next to the .blend)
        settled = (
            memory.listing is not None
            and memory.listed_job == job
            and not fresh
            and (job.state == "cancelled" or job.archived or memory.finished_at is not None)
        )
        if settled and self.clock() - memory.listed_at < SETTLED_RELIST_S:
            listing = memory.listing
        else:
            try:
                listing = sort_listing(self.fs.listdir(folder), ItemPattern(job.extensions))
            except OSError as exc:
                memory.listing = None
                return self._view(
                    job, memory, JobSummary(job, error=f"cannot list items: {exc.strerror or exc}"), (), output
                )
            memory.listing, memory.listed_at, memory.listed_job = listing, self.clock(), job
        summary = JobSummary(job, len(listing.pending), len(listing.working), len(listing.done), len(listing.failed))
        done_keys = frozenset(i.base.casefold() for i in listing.done)
        if watched:
            self._read_extras(job, memory, done_keys)
        items = sorted([*listing.pending, *listing.working, *listing.done, *listing.failed], key=lambda i: i.key)
        grid = tuple(item_json(i, memory.thumbs, self._seconds(memory, i)) for i in items)
        return self._view(job, memory, summary, grid, output)

    def _view(
        self, job: Job, memory: _JobMemory, summary: JobSummary, grid: tuple[dict[str, Any], ...], output: str
    ) -> JobView:
        rate = self.rates.rate(job.id, summary.done)
        p = progress(summary, rate=rate, finished_at=memory.finished_at)
        if p.state in FINISHED and memory.finished_at is None:
            memory.finished_at = time.time()
        elif p.state not in FINISHED:
            memory.finished_at = None
        key = tuple(json.dumps(i, sort_keys=True) for i in grid)
        if key != memory.items_key:
            memory.items_key, memory.items_version = key, memory.items_version + 1
        return JobView(job, p, output, summary.error, grid, memory.items_version)

    def _read_extras(self, job: Job, memory: _JobMemory, done_keys: frozenset[str]) -> None:
        """Thumbnails and render times of a watched job: listed only when its finished items changed."""
        if done_keys != memory.thumbs_for:
            memory.thumbs_for, memory.thumb_retries = done_keys, THUMB_RETRIES
        if done_keys - memory.thumbs and memory.thumb_retries > 0:
            memory.thumb_retries -= 1
            try:
                names = self.fs.listdir(thumbs_dir(self.layout, job.id))
                memory.thumbs = frozenset(
                    n[: -len(THUMB_EXT)].casefold() for n in names if n.lower().endswith(THUMB_EXT) and not is_junk(n)
                )
            except OSError:
                pass  # no thumbnails yet
        now = self.clock()
        first_look, memory.looked = not memory.looked, True
        for key in done_keys:
            # Done before the page first looked: no status will name it any more.
            memory.first_done.setdefault(key, now - (RECENT_GRACE_S if first_look else 0.0))
        unknown = frozenset(
            k for k in done_keys - memory.seconds.keys() if now - memory.first_done[k] >= RECENT_GRACE_S
        )
        listed_at = memory.logs_listed_at
        if unknown and (listed_at is None or now - listed_at >= LOGS_RELIST_S):
            memory.logs_listed_at = now
            for key, attempts in self._attempts(job, unknown).items():
                ok = [a.seconds for a in attempts if a.seconds is not None and a.exit_code == 0]
                if ok:
                    memory.seconds[key] = ok[-1]

    def _attempts(self, job: Job, done_keys: frozenset[str]) -> dict[str, list[Attempt]]:
        try:
            names = self.fs.listdir(job.logs_dir(self.layout))
        except OSError:
            return {}
        found: dict[str, list[Attempt]] = {}
        for name in names:
            m = LOG_NAME_RE.match(name)
            if not m or is_junk(name):
                continue
            base = m["base"].casefold()
            seconds = code = None
            if base in done_keys:
                seconds, code = self._footer(job.logs_dir(self.layout) / name)
            found.setdefault(base, []).append(Attempt(m["host"], int(m["attempt"]), name, seconds, code))
        for attempts in found.values():
            attempts.sort(key=lambda a: a.attempt)
        return found

    def _footer(self, path: Path) -> tuple[float | None, int | None]:
        """A finished log's render time, read once per process (it never changes)."""
        cached = self._log_cache.get(path.name)
        if cached is not None:
            return cached
        try:
            data = read_tail(path, LOG_TAIL_BYTES)
        except OSError:
            return None, None
        found = list(_FOOTER_RE.finditer(data))
        m = found[-1] if found else None
        result = (float(m[2]), int(m[1])) if m else (None, None)
        if m:
            self._log_cache[path.name] = result
        return result

    def _seconds(self, memory: _JobMemory, item: ItemName) -> float | None:
        if item.state != "done":
            return None
        return memory.seconds.get(item.base.casefold())
