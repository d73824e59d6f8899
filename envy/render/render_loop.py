"""``render()``: the agent's workers work through the active jobs, by priority then age.

Each worker claims one item at a time (claims.py), runs it through the
process handler (worker.py), and marks it completed or failed. The loop also
watches other agents' heartbeats to take over the items of dead owners
(reclaim.py). ``stop()`` kills the renders and gives their items back.

The loop depends on its host through ``RenderHost`` (host.py), never on the
agent itself, and on the task types the agent's builder registered
(``Planners``, plans.py).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envy.local_state import share_id
from envy.notify.outbox import Outbox
from envy.notify.settings import notify_settings
from envy.platform.host import os_name
from envy.protocol.status import RecentFrame, WorkerStatus
from envy.protocol.status_seal import StatusSeal
from envy.render.claims import Claim, FolderQueue, Identity, ItemName, ItemPattern
from envy.render.dependencies import DependencyGate, DependencyState, read_state
from envy.render.host import RenderHost
from envy.render.job_files import JobFiles
from envy.render.job_finish import JobFinish
from envy.render.jobs import Job, select_active
from envy.render.plans import PlanInput, Planners, PlanRefused
from envy.render.profiles import RendererProfile, load_profiles
from envy.render.reclaim import Reclaimer
from envy.render.remap import PathRemap
from envy.render.worker import RenderWorker
from envy.share.bounded import FileTrust

log = logging.getLogger(__name__)

QUEUE_EMPTY = "queue empty"  # the status file's ``work`` when render mode has nothing to do
# ... and when what is left waits for other jobs: "waiting: shot020 waiting for shot010-cache".
WAITING = "waiting: "

RENDER_MODE_FILE = "render-mode.json"
RECENT_DONE = 16


def remembered_targets(state_dir: Path, share: str | None = None) -> list[str] | None:
    """The targets of the render() this host was in when it last stopped, or None.

    With ``share`` (the share's id, envy/local_state.py), a record made on
    another share, such as an older one re-created at the same path, is ignored.
    """
    try:
        data = json.loads((state_dir / RENDER_MODE_FILE).read_text(encoding="utf-8"))
        recorded = data.get("share")
        if share is not None and recorded is not None and recorded != share:
            return None
        return [str(t) for t in data.get("targets", [])]
    except (OSError, ValueError, AttributeError):
        return None


class RenderLoop:
    """Ownership of its state:

    * ``active``, ``targets``, ``_workers``, ``_profiles``: written by the
      polling thread only (start/stop/close); ``_workers`` is replaced whole,
      so the heartbeat reads a complete list.
    * ``_jobs``, ``_queues``, ``_failed_here``: shared by the workers and the
      reclaimer, behind ``_lock``.
    * the done count and the hold reason: changed only through
      ``count_done()`` and ``hold()``, behind ``_lock`` (the recent frames too).
    * what each worker is doing: published by that worker (worker.py).
    """

    def __init__(self, host: RenderHost, planners: Planners, trust: FileTrust | None = None,
                 status_seal: StatusSeal | None = None) -> None:
        self.host = host
        self.planners = planners
        self.trust = trust  # signed mode: a renderer profile on the share must be signed with the farm key
        self.status_seal = status_seal  # signed mode: the reclaimer believes only sealed status files
        self.me = Identity(host.host.lower(), os.getpid(), host.nonce)
        self.active = False
        self.targets: tuple[str, ...] = ()
        self._done_count = 0
        # The last frames done and their render times, for the status file: a monitor learns a
        # frame's time from the file it reads anyway. Enough for one heartbeat of a busy agent.
        self._recent: deque[RecentFrame] = deque(maxlen=RECENT_DONE)
        self._waiting: tuple[str, ...] = ()  # jobs held by their dependencies at the last look
        # Holds by source (the lockdown policy, NIMBY): finish the frame in hand, take no new one.
        self._holds: dict[str, str] = {"policy": "", "nimby": "", "upgrade": ""}
        self._stop = threading.Event()
        # Set when there may be work for an idle worker (a reclaimed frame, stop):
        # idle workers wait on it instead of sleeping a whole poll interval.
        self.work_ready = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[RenderWorker] = []
        self._queues: dict[str, FolderQueue] = {}
        self._jobs: list[Job] = []
        self._job_files = JobFiles(host.layout, host.fs)  # under _lock, like _jobs
        self._jobs_read_at = -1e9
        self._jobs_fresh_due = False  # set by render(): its first listing of jobs/ is a fresh one
        self._profiles: Mapping[str, RendererProfile] = {}
        self._failed_here: dict[str, float] = {}  # item key -> when this host failed it (monotonic)
        self.jobs_readable = True  # False while the jobs folder cannot be listed
        self.reclaimer = Reclaimer(self)
        # Jobs that wait for others (--after): decided here, where every kind of job is claimed.
        self.dependencies = DependencyGate(self._dependency_state, lambda: max(3.0, self.host.config.poll_interval))
        # A job's finish is told once, by the agent that wins its event marker (job_finish.py).
        outbox = Outbox(lambda user: notify_settings(host.layout, user, host.config), f"envy@{self.me.host}",
                        pending_dir=host.state_dir)
        self.finishes = JobFinish(host.layout, host.fs, self.me, self.work_folder, outbox)

    # -- counters and holds (any thread) --------------------------------------------------
    def count_done(self, job_id: str, frame: str, seconds: float) -> None:
        with self._lock:
            self._done_count += 1
            self._recent.append(RecentFrame(job_id, frame, round(seconds, 1)))

    def recent_done(self) -> list[RecentFrame]:
        """The last frames done here, newest last (for the status file)."""
        with self._lock:
            return list(self._recent)

    @property
    def done_count(self) -> int:
        with self._lock:
            return self._done_count

    def hold(self, reason: str, source: str = "policy") -> None:
        """Hold the workers (a non-empty reason) or let them go on (''), for one ``source``.

        The lockdown policy ("policy") and NIMBY ("nimby", someone is using the
        machine) hold independently: the workers take frames only when neither does.
        """
        with self._lock:
            self._holds[source] = reason

    @property
    def hold_reason(self) -> str:
        with self._lock:
            return next((r for r in self._holds.values() if r), "")

    def give_back(self, reason: str) -> None:
        """Stop the renders in hand and give their frames back (NIMBY ``stop``); the loop goes on."""
        for w in list(self._workers):
            w.give_back_current(reason)

    # -- control ----------------------------------------------------------------------
    def start(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        remap = PathRemap.parse(list(self.host.config.remap))
        raw = [str(a) for a in args] + [str(v) for k, v in kwargs.items() if k in ("job", "folder")]
        # A folder named in render('P:/proj/shot') is the submitter's path: compare it
        # both as written and as this OS sees it.
        self.targets = tuple(raw) + tuple(remap.apply(t, os_name()) for t in raw if ("/" in t or "\\" in t))
        self._remember(True)
        self._profiles = load_profiles([Path(p) for p in self.host.config.profiles], trust=self.trust)
        self._jobs_read_at = -1e9
        self._jobs_fresh_due = True  # a job submitted a moment ago must not wait for the client's listing cache
        if self.active:
            log.info("render: already rendering; now for %s", ", ".join(self.targets) or "all active jobs")
            return
        self._stop.clear()
        self.active = True
        count = self.host.config.workers
        self._workers = [RenderWorker(self, i) for i in range(count)]
        for w in self._workers:
            w.start()
        self.reclaimer.start()
        log.info("render: %d worker(s) on %s", count, ", ".join(self.targets) or "all active jobs")

    def stop(self) -> None:
        self._remember(False)
        self._halt()

    def close(self) -> None:
        """The agent is quitting: stop the renders but remember to resume after a restart."""
        self._halt()
        self.finishes.outbox.stop()

    def item_finished(self, job: Job) -> None:
        """A worker marked an item of ``job`` done or failed for good: did the job just finish?

        Asked by a listing only once this agent has no untried names of the job (job_finish.py)."""
        self.finishes.item_finished(job, more_to_claim=self.queue_for(job).untried() > 0)

    def _remember(self, rendering: bool) -> None:
        """Keep render mode across restart() and crashes (a local file, not the share)."""
        path = self.host.state_dir / RENDER_MODE_FILE
        try:
            if rendering:
                record = {"targets": list(self.targets), "share": share_id(self.host.layout, self.host.fs)}
                path.write_text(json.dumps(record), encoding="utf-8")
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot record render mode in %s: %s", path, exc)

    def _halt(self) -> None:
        if not self.active:
            return
        self.active = False
        self._stop.set()
        self.work_ready.set()
        for w in self._workers:
            w.stop_current()
        for w in self._workers:
            w.join(timeout=15)
        self.reclaimer.stop()
        self._workers = []
        log.info("render: stopped")

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def wait_for_work(self) -> None:
        """An idle worker's pause: until the next poll, or sooner when work is handed over."""
        if self.work_ready.wait(self.host.config.poll_interval):
            self.work_ready.clear()

    # -- what to work on ----------------------------------------------------------------
    def jobs(self) -> list[Job]:
        """Active jobs for this agent, re-read at most once per poll interval."""
        now = time.monotonic()
        with self._lock:
            if now - self._jobs_read_at >= self.host.config.poll_interval:
                try:
                    jobs, warnings = self._job_files.read(fresh=self._jobs_fresh_due)
                except OSError as exc:
                    # Keep the jobs we knew: an outage is not an empty farm.
                    self.jobs_readable = False
                    log.debug("cannot list jobs: %s", exc)
                    return list(self._jobs)
                self.jobs_readable = True
                self._jobs_fresh_due = False
                for w in warnings:
                    self.host.report_once(w)
                self._jobs = [j for j in select_active(jobs, self.targets) if self._allowed(j)]
                self._jobs_read_at = now
            return list(self._jobs)

    def _allowed(self, job: Job) -> bool:
        """Whether the folder whose items we would claim (rename) is inside the share or a project root."""
        try:
            self.work_folder(job)
        except PlanRefused as exc:
            self.host.report_once(f"job {job.name} ({job.id}) refused: {exc}")
            return False
        return True

    def queue_for(self, job: Job) -> FolderQueue:
        with self._lock:
            queue = self._queues.get(job.id)
            if queue is None:
                folder = self.work_folder(job)
                queue = FolderQueue(folder, ItemPattern(job.extensions), self.me, self.host.fs)
                self._queues[job.id] = queue
            return queue

    def work_folder(self, job: Job) -> Path:
        """Where the job's items are claimed; PlanRefused when that leaves the allowed folders."""
        inp = self.plan_input(job, None)
        if job.kind == "tasks":
            return inp.confined_local(job.tasks_dir(self.host.layout), "task folder")
        return inp.confined(job.source, "job source")

    def plan_input(self, job: Job, claim: Claim | None) -> PlanInput:
        return PlanInput(job, claim, self._profiles, self.host.config, self.host.nonce,  # type: ignore[arg-type]
                         self.host.layout.jobs_dir / job.id, self.host.fs, self.host.layout.root)

    def next_claim(self) -> tuple[Job, Claim] | None:
        """A reclaimed item first, else the next pending item of the best job."""
        if self.hold_reason:
            return None
        taken = self.reclaimer.take()
        if taken is not None:
            return taken
        waiting: list[str] = []
        for job in self.jobs():
            note = self.dependencies.blocked(job)
            if note:
                waiting.append(f"{job.name} {note}")
                continue
            try:
                claim = self.queue_for(job).claim_next(avoid=self._failed_here_recently)
            except PlanRefused as exc:  # its folder became a link out since the job was read
                self.host.report_once(f"job {job.name} ({job.id}) refused: {exc}")
                continue
            except OSError as exc:
                self.host.report_once(f"cannot read the items of job {job.id}: {exc}")
                continue
            if claim is not None and not self._job_still_there(job):
                # Deleted since our last look at jobs/ (`envy-io delete` gives the scenes their
                # own names back, which look pending): give the frame back, never render it.
                self.queue_for(job).release(claim)
                with self._lock:
                    self._jobs_read_at = -1e9  # read jobs/ again at the next look
                log.info("job %s was deleted; gave back %s", job.name, claim.item.original)
                continue
            if claim is not None:
                return job, claim
            self.finishes.nothing_to_claim(job)  # its folder was just listed: nothing pending
        self._waiting = tuple(waiting)  # replaced whole: the heartbeat reads it without the lock
        self.finishes.recheck()
        return None

    def _job_still_there(self, job: Job) -> bool:
        """Whether the job file is still on the share, asked of the server (one open per claim)."""
        try:
            return self.host.fs.on_server(self.host.layout.jobs_dir / f"{job.id}.json")
        except OSError:
            return True  # the share cannot tell now: the claim's own checks decide later

    def _dependency_state(self, job_id: str) -> DependencyState:
        return read_state(self.host.layout, self.host.fs, job_id, self.work_folder)

    def retry_elsewhere_s(self) -> float:
        """How long a host leaves a frame it just failed to the others: long
        enough for any rendering host to see it pending (its next claim), short
        enough that a lone host retries without much delay."""
        cfg = self.host.config
        return 2 * cfg.poll_interval + cfg.heartbeat + 1.0

    def note_failure(self, item: ItemName) -> None:
        with self._lock:
            now = time.monotonic()
            self._failed_here[item.key] = now
            horizon = self.retry_elsewhere_s()
            self._failed_here = {k: t for k, t in self._failed_here.items() if now - t < horizon}

    def _failed_here_recently(self, item: ItemName) -> bool:
        if item.host.casefold() != self.me.host:
            return False
        failed_at = self._failed_here.get(item.key)
        return failed_at is not None and time.monotonic() - failed_at < self.retry_elsewhere_s()

    def max_retries(self, job: Job) -> int:
        return job.max_retries if job.max_retries is not None else self.host.config.max_retries

    def frames_in_hand(self) -> int:
        return sum(1 for w in self._workers if w.in_hand is not None)

    def free_workers(self) -> int:
        """Workers with nothing in hand now: how many stale frames the reclaimer may take over."""
        return sum(1 for w in self._workers if w.in_hand is None and w.is_alive())

    # -- what the status file shows -----------------------------------------------------
    def worker_statuses(self) -> list[WorkerStatus]:
        return [w.status() for w in self._workers]

    def job_names(self) -> list[str]:
        in_hand = [w.in_hand for w in self._workers]
        return sorted({h.job.id for h in in_hand if h is not None})

    def describe(self) -> str:
        hold = self.hold_reason
        if hold:
            return f"held: {hold}"
        if not self.active:
            return ""
        busy = [h for h in (w.in_hand for w in self._workers) if h is not None]  # each read once
        if not busy:
            # Render mode is on but nothing is left: Envy IO shows "idle (queue empty)", or
            # what the jobs left wait for (envy_io/agents.py); a new job is picked up at the next poll.
            waiting = self._waiting
            return WAITING + "; ".join(waiting) if waiting else QUEUE_EMPTY
        return "; ".join(h.describe() for h in busy)
