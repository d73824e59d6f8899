"""Taking over the items of dead agents (ENGINEERING §1.5 and §1.6).

While rendering, the agent watches every agent's heartbeat counter on its own
monotonic clock. An item claimed by an owner that is dead is renamed to our
own claim name, a race only one reclaimer can win, then rendered like any
other. "Dead" means one of:

* the owner's counter has not changed for ``dead_after`` seconds since we
  first looked (a fresh observer gives everyone that much grace);
* the owner restarted: its status shows a new nonce whose counter we have
  seen move, so the claim (old nonce) belongs to a run that is gone;
* the owner has no status file at all for ``dead_after`` seconds.
"""

from __future__ import annotations

import collections
import logging
import threading

from envy.loop_guard import LoopGuard
from envy.protocol.liveness import LivenessTracker
from envy.protocol.status import AgentStatus
from envy.render.claims import Claim, FolderQueue, ItemName, sort_listing
from envy.render.host import ReclaimerLoop
from envy.render.jobs import Job
from envy.share.atomic import read_json

log = logging.getLogger(__name__)


class Reclaimer(threading.Thread):
    def __init__(self, loop: ReclaimerLoop) -> None:
        super().__init__(name="envy-reclaimer", daemon=True)
        self.loop = loop
        cfg = loop.host.config
        self.tracker = LivenessTracker(cfg.dead_after, for_takeover=True)
        self.statuses: dict[str, AgentStatus] = {}
        self._unsealed: dict[str, str] = {}  # signed mode: hosts whose status is not the farm key's, and why
        self._orphan_seen: dict[tuple[str, str], float] = {}
        self._ready: collections.deque[tuple[Job, Claim]] = collections.deque()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._launched = False
        self._blind = False  # a scan could not read the share since the last good one

    def start(self) -> None:
        if not self._launched:
            self._launched = True
            super().start()
        self._stopped.clear()

    def stop(self) -> None:
        self._stopped.set()
        self._give_back()

    def _give_back(self) -> None:
        with self._lock:
            ready = list(self._ready)
            self._ready.clear()
        for job, claim in ready:  # reclaimed but never started: give back
            self.loop.queue_for(job).release(claim)

    def take(self) -> tuple[Job, Claim] | None:
        with self._lock:
            return self._ready.popleft() if self._ready else None

    def run(self) -> None:
        guard = LoopGuard("the reclaimer", log)  # this thread's own
        while not self.loop.host.quitting.is_set():
            try:
                interval = self._round()
                guard.ok()
            except Exception as exc:  # MemoryError, a bad status file's surprise: the next round goes on
                interval = guard.failed(exc)
            self.loop.host.quitting.wait(interval)

    def _round(self) -> float:
        """One look at the claims (or a give-back while held); returns the wait until the next."""
        cfg = self.loop.host.config  # read at each round: a reload() reaches the reclaimer
        self.tracker.dead_after = cfg.dead_after
        # About one heartbeat, and at most a quarter of dead_after, so a dead
        # owner is noticed soon after dead_after has passed.
        interval = max(0.5, min(cfg.heartbeat, cfg.dead_after / 4))
        if self.loop.active and not self._stopped.is_set():
            if self.loop.hold_reason:
                self._give_back()  # held by the lockdown policy: take over nothing, sit on nothing
            else:
                self.scan()
        return interval

    def observe(self, hosts: set[str]) -> bool:
        """Read the status files of ``hosts`` only: the owners of claimed items.

        Reading every status file on the share at every scan would cost each
        rendering agent one read per host; owners of claims are all we judge.
        False when a read failed: this round proves nothing about anyone.
        """
        layout, fs = self.loop.host.layout, self.loop.host.fs
        ok = True
        seal = self.loop.status_seal
        for host in hosts:
            try:
                data = read_json(layout.status_file(host), fs, "status")
                problem = seal.problem(data) if seal is not None else None
                if problem is not None:
                    # Signed mode: only key holders speak for a host. Not evidence of life or death:
                    # its frames are left alone while its status is not the farm key's (Must-hold 10).
                    self._unsealed[host] = problem
                    self.loop.host.report_once(f"status file of {host} is not taken as evidence: {problem}")
                    continue
                self._unsealed.pop(host, None)
                status = AgentStatus.from_json(data)
            except FileNotFoundError:
                self.statuses.pop(host, None)
                continue
            except ValueError as exc:  # a torn or foreign file: judge by the others' next rounds
                log.debug("status of %s unreadable this time: %s", host, exc)
                continue
            except OSError as exc:
                log.debug("cannot read the status of %s: %s", host, exc)
                ok = False
                continue
            self.tracker.observe(status.host, status.nonce, status.counter, status.heartbeat)
            self.statuses[host] = status
        return ok

    def _after_blindness(self) -> None:
        """Silence counts only while we could watch. After rounds in which we
        could not see the share (an outage for everyone: nobody could beat),
        start every owner's grace period again instead of calling them all
        dead. (A paused observer needs no such care: when it looks again, the
        living have moved their counters on.)"""
        if self._blind:
            log.info("the share is readable again; giving every agent a fresh grace period")
            self.tracker = LivenessTracker(self.loop.host.config.dead_after, self.tracker.clock, for_takeover=True)
            self._orphan_seen.clear()
            self._blind = False

    def owner_is_gone(self, item: ItemName, now: float) -> bool:
        me = self.loop.me
        host = item.host.lower()
        if host == me.host:
            return item.nonce != me.nonce or item.pid != me.pid  # a claim of my own earlier run
        if host in self._unsealed or self.tracker.is_suspect(host):
            return False  # someone else writes its status: neither alive nor dead (liveness.py)
        status = self.statuses.get(host)
        if status is not None:
            if status.nonce != item.nonce and self.tracker.proven_alive(host):
                return True  # the owner restarted; its old claims are orphans
            return not self.tracker.is_alive(host)
        first = self._orphan_seen.setdefault((host, item.nonce), now)
        return now - first >= self.loop.host.config.dead_after

    def scan(self) -> None:
        claimed: list[tuple[Job, FolderQueue, ItemName]] = []
        jobs = self.loop.jobs()
        if not self.loop.jobs_readable:
            self._blind = True
            return  # the jobs folder cannot be read: nothing can be judged this round
        for job in jobs:
            queue = self.loop.queue_for(job)
            try:
                listing = sort_listing(self.loop.host.fs.listdir(queue.folder), queue.pattern)
            except OSError:
                self._blind = True
                return  # cannot see the items: nothing can be judged this round
            claimed += [(job, queue, item) for item in listing.working]
        me = self.loop.me
        self._after_blindness()
        if not self.observe({item.host.lower() for _, _, item in claimed if item.host.lower() != me.host}):
            self._blind = True
            return
        now = self.tracker.clock()
        # Fair reclaiming: take over at most as many stale frames as we have idle
        # workers to start them at once; the rest stay for other agents (issue 14:
        # a one-worker agent took all three of a dead agent's frames and rendered
        # them one after another while others sat idle).
        with self._lock:
            room = self.loop.free_workers() - len(self._ready)
        for job, queue, item in claimed:
            if room <= 0:
                break
            if self._stopped.is_set() or not self.owner_is_gone(item, now):
                continue
            claim = queue.reclaim(item)
            if claim is not None:
                room -= 1
                with self._lock:
                    self._ready.append((job, claim))
                self.loop.work_ready.set()  # wake an idle worker now, not at its next poll
