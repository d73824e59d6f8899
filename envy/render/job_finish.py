"""Whether a job just finished, decided by the agent that finished one of its items (issue 11 §6).

After a worker marks an item done (or failed for good) it asks here: one
listing of the job's items, but only once this agent has nothing more of the
job to claim. While its own cached listing (claims.py) still holds names to
try, the job has work left as far as this agent can tell, and listing the
whole folder after every frame would cost a share request per frame that
grows with the folder (ENGINEERING §1.13); the job is noted instead and
listed when a claim finds nothing pending in it. Nothing pending or running: the job is
``complete`` (or ``complete with failures``), and the agent tries to create
the job's event marker (envy/notify/events.py); only the one whose create
wins hands the event to the outbox, so each finish is told exactly once.

Listings are hints (§1.7): another agent's last item may look running here
after it finished there. A job whose only items left are running elsewhere
is kept and listed again at most every ``RECHECK_S`` by an idle worker, so a
stale listing delays the notice; it never loses it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from envy.notify.events import claim_event, new_event
from envy.notify.outbox import Outbox
from envy.render.claims import Identity, ItemPattern, sort_listing
from envy.render.job_state import COMPLETE, COMPLETE_WITH_FAILURES
from envy.render.jobs import Job
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

log = logging.getLogger(__name__)

RECHECK_S = 3.0


class JobFinish:
    """Shared by the workers: ``_running_elsewhere`` and ``_checked_at`` are behind ``_lock``."""

    def __init__(self, layout: ShareLayout, fs: ShareFS, me: Identity, folder_of: Callable[[Job], Path],
                 outbox: Outbox) -> None:
        self.layout, self.fs, self.me = layout, fs, me
        self.folder_of = folder_of
        self.outbox = outbox
        self._lock = threading.Lock()
        self._running_elsewhere: dict[str, Job] = {}
        self._checked_at = 0.0
        # Jobs with an item finished here while this agent still had names of theirs to claim:
        # listed when a claim finds none left (nothing_to_claim) or at an idle worker's recheck.
        self._due: dict[str, Job] = {}

    def item_finished(self, job: Job, more_to_claim: bool = False) -> None:
        """This agent just marked an item of ``job`` done or failed for good.

        ``more_to_claim``: this agent still has untried names of the job, so its listing waits
        until a claim finds none (``nothing_to_claim``)."""
        if more_to_claim:
            with self._lock:
                self._due[job.id] = job
            return
        with self._lock:
            self._due.pop(job.id, None)
        self._settle(job)

    def nothing_to_claim(self, job: Job) -> None:
        """A claim found nothing pending in ``job``: the moment to look whether it finished, if an item did here."""
        with self._lock:
            due = self._due.pop(job.id, None)
        if due is not None:
            self._settle(due)

    def _settle(self, job: Job) -> None:
        settled = self._check(job)
        with self._lock:
            if settled:
                self._running_elsewhere.pop(job.id, None)
            else:
                self._running_elsewhere[job.id] = job

    def recheck(self) -> None:
        """An idle worker's look at jobs whose last items were running elsewhere (at most every RECHECK_S),
        and at once at jobs still due a look (no longer among this agent's targets, say)."""
        with self._lock:
            due, self._due = list(self._due.values()), {}
        for job in due:
            self._settle(job)
        with self._lock:
            now = time.monotonic()
            if not self._running_elsewhere or now - self._checked_at < RECHECK_S:
                return
            self._checked_at = now
            jobs = list(self._running_elsewhere.values())
        for job in jobs:
            if self._check(job):
                with self._lock:
                    self._running_elsewhere.pop(job.id, None)

    def _check(self, job: Job) -> bool:
        """True when there is nothing more to watch: the job finished (told or not), or has items pending."""
        try:
            counts = sort_listing(self.fs.listdir(self.folder_of(job)), ItemPattern(job.extensions)).counts()
        except OSError as exc:
            log.debug("cannot list the items of %s to see whether it finished: %s", job.name, exc)
            return False
        if counts["running"]:
            return False
        if counts["pending"] or not counts["done"] + counts["failed"]:
            return True
        state = COMPLETE_WITH_FAILURES if counts["failed"] else COMPLETE
        event = new_event(job.id, job.name, job.created_by, job.created_host, state, counts["done"],
                          counts["failed"], self.me.host, self.me.pid, self.me.nonce)
        if claim_event(self.layout, event, self.fs):
            log.info("job %s is %s: this agent tells %s", job.name, state, job.created_by or "nobody")
            self.outbox.send(event)
        return True
