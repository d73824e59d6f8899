"""Jobs that wait for other jobs: ``envy-io submit ... --after JOB[,JOB]`` (issue 11 §5).

The job file records the ids of the jobs it waits for (``Job.after``,
written once by the submitter). Its items may be claimed only when every one
of them is ``complete`` (job_state.py); a dependency that finished with
failures, or was cancelled, holds the job with that reason. The gate sits
where a worker picks a job's next item (``RenderLoop.next_claim``), so frame
folders, frame ranges, husk and hython jobs all share it.

Cost on the share: an agent keeps each waiting job's answer for a few seconds
(``DependencyGate``) instead of reading every dependency on every claim, and
a dependency it has seen complete is never read again (its items are done;
a job already released is not held back because someone resets frames of
the job it waited for).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from envy.render.claims import ItemPattern, sort_listing
from envy.render.job_state import ACTIVE, CANCELLED, COMPLETE, COMPLETE_WITH_FAILURES, job_state
from envy.render.jobs import MAX_AFTER, Job, JobError, load_job, match_jobs
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

MISSING = "missing"  # the job file is gone or unreadable
UNKNOWN = "unknown"  # the share could not answer now: keep waiting

# A dependency as the gate and the job list see it: (its name, its state).
DependencyState = tuple[str, str]


def resolve_after(jobs: Sequence[Job], names: Sequence[str], own_name: str | None = None) -> list[str]:
    """The ids of the jobs named by ``--after`` (names, ids or their start, or submitted folders).

    Each entry of ``names`` may hold several, comma-separated. A name that fits
    no job (or several) is a ``JobError`` naming the jobs there are.
    """
    wanted = [n.strip() for text in names for n in text.split(",") if n.strip()]
    ids: list[str] = []
    for name in wanted:
        if own_name is not None and name.casefold() == own_name.casefold() and not match_jobs(jobs, name):
            raise JobError(f"--after {name}: a job cannot wait for itself")
        found = [j for j in match_jobs(jobs, name) if not j.archived or j.name == name or j.id == name]
        if not found:
            raise JobError(f"--after {name}: no such job (known: {_known(jobs)})")
        if len(found) > 1:
            listed = ", ".join(f"{j.name} ({j.id})" for j in found[:5])
            raise JobError(f"--after {name} fits {len(found)} jobs ({listed}); give one job's id")
        if found[0].state == "cancelled":
            raise JobError(f"--after {name}: job {found[0].name} is cancelled; resume it first or wait for another")
        if found[0].id not in ids:
            ids.append(found[0].id)
    if len(ids) > MAX_AFTER:
        raise JobError(f"--after names {len(ids)} jobs; a job may wait for at most {MAX_AFTER}")
    return ids


def _known(jobs: Sequence[Job], most: int = 12) -> str:
    names = [j.name for j in jobs if not j.archived and j.state != "cancelled"]
    if not names:
        return "none; submit the job to wait for first"
    more = f", +{len(names) - most} more (envy-io jobs)" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def check_no_cycle(job_id: str, after: Sequence[str], jobs: Sequence[Job]) -> None:
    """A ``JobError`` when ``job_id`` would wait for itself, directly or through the jobs it waits for."""
    by_id = {j.id: j for j in jobs}
    path: dict[str, str] = {}  # job id -> the id that led to it
    todo = [(a, job_id) for a in after]
    while todo:
        current, came_from = todo.pop()
        if current in path:
            continue
        path[current] = came_from
        if current == job_id:
            chain = [job_id]
            step = came_from
            while step != job_id:
                chain.append(step)
                step = path[step]
            names = [by_id[i].name if i in by_id else i for i in [job_id, *reversed(chain[1:]), job_id]]
            raise JobError(f"--after would make a loop of jobs waiting for each other: {' -> '.join(names)}")
        dep = by_id.get(current)
        if dep is not None:
            todo.extend((a, current) for a in dep.after)


def waiting_note(deps: Sequence[DependencyState]) -> str:
    """Why a job cannot start: ``held: X failed`` first, else ``waiting for X, Y``; '' when it can."""
    held = []
    for name, state in deps:
        if state == COMPLETE_WITH_FAILURES:
            held.append(f"{name} failed")
        elif state == CANCELLED:
            held.append(f"{name} cancelled")
        elif state == MISSING:
            held.append(f"{name} not found")
    if held:
        return "held: " + ", ".join(held)
    waiting = [name for name, state in deps if state != COMPLETE]
    return f"waiting for {', '.join(waiting)}" if waiting else ""


def note_from_states(job: Job, states: Mapping[str, DependencyState]) -> str:
    """``waiting_note`` for ``job`` from states already known by id (the job list's own rows)."""
    return waiting_note([states.get(a, (a, MISSING)) for a in job.after])


def shown_state(job: Job, state: str, states: Mapping[str, DependencyState]) -> str:
    """The state a job list shows (``envy-io jobs``, the web page): an active job that waits for
    others says why instead (``waiting for X``, ``held: X failed``)."""
    note = note_from_states(job, states) if job.after and state == ACTIVE else ""
    return note or state


def read_state(layout: ShareLayout, fs: ShareFS, job_id: str, folder_of: Callable[[Job], Path]) -> DependencyState:
    """One job's state read from the share: its job file, then one listing of its items."""
    try:
        dep = load_job(layout, job_id, fs)
    except JobError:
        return job_id, MISSING
    except OSError:
        return job_id, UNKNOWN
    try:
        listing = sort_listing(fs.listdir(folder_of(dep)), ItemPattern(dep.extensions))
    except OSError:
        return dep.name, UNKNOWN
    c = listing.counts()
    return dep.name, job_state(dep, c["pending"], c["running"], c["done"], c["failed"])


class DependencyGate:
    """Whether a job's items may be claimed now, from dependency states kept ``recheck_s()`` seconds.

    The states are kept per dependency, not per waiting job: twenty jobs waiting
    for one cache cost one read of it every few seconds. Shared by the agent's
    workers: ``_states``, ``_complete`` and ``_released`` are behind ``_lock``,
    held while one worker re-reads (the others wait for its answer rather than
    read the same files).
    """

    def __init__(self, state_of: Callable[[str], DependencyState], recheck_s: Callable[[], float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._state_of = state_of
        self._recheck_s = recheck_s
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, tuple[DependencyState, float]] = {}  # dependency id -> (state, when read)
        self._complete: dict[str, str] = {}  # dependency id -> its name: seen complete, never read again
        self._released: set[str] = set()  # jobs whose dependencies were all complete: never held again

    def blocked(self, job: Job) -> str:
        """'' when every job ``job`` waits for is complete, else why not (``waiting for X``, ``held: X failed``)."""
        if not job.after:
            return ""
        with self._lock:
            if job.id in self._released:
                return ""
            note = waiting_note([self._state(dep_id) for dep_id in job.after])
            if not note:
                self._released.add(job.id)
            return note

    def _state(self, dep_id: str) -> DependencyState:
        if dep_id in self._complete:
            return self._complete[dep_id], COMPLETE
        now = self._clock()
        known = self._states.get(dep_id)
        if known is not None and now - known[1] < self._recheck_s():
            return known[0]
        state = self._state_of(dep_id)
        if state[1] == COMPLETE:
            self._complete[dep_id] = state[0]
            self._states.pop(dep_id, None)
        else:
            self._states[dep_id] = (state, now)
        return state
