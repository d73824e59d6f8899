"""A job's state as people read it, decided from the job file and its item names (issue 11 §1).

The job file holds only what the submitter chose (``active``, ``paused``,
``cancelled``; see jobs.py). Whether a job is finished is not written
anywhere: it follows from the names of its items on the share (claims.py),
so every viewer (``envy-io jobs``, the monitor, the web page) decides it the
same way, here:

* ``cancelled`` and ``paused``: the submitter said so (a paused job's frames
  still running finish, but no new ones start);
* ``complete``: every item is done;
* ``complete with failures``: nothing is pending or running, and some items
  failed for good;
* ``active``: anything else (including a job whose folder cannot be listed
  now: a listing is a hint, §1.7, and never finishes a job).
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

from envy.render.jobs import Job
from envy.render.overview import JobSummary

ACTIVE, PAUSED, COMPLETE, COMPLETE_WITH_FAILURES, CANCELLED = (
    "active",
    "paused",
    "complete",
    "complete with failures",
    "cancelled",
)
STATES = (ACTIVE, PAUSED, COMPLETE, COMPLETE_WITH_FAILURES, CANCELLED)
FINISHED = (COMPLETE, COMPLETE_WITH_FAILURES)


def job_state(job: Job, pending: int, running: int, done: int, failed: int, listed: bool = True) -> str:
    """The state of ``job`` given the counts of its items by name (``listed``: the folder could be read)."""
    if job.state == "cancelled":
        return CANCELLED
    if job.state == "paused":
        return PAUSED
    total = pending + running + done + failed
    if not listed or total == 0 or pending or running:
        return ACTIVE
    return COMPLETE_WITH_FAILURES if failed else COMPLETE


def summary_state(summary: JobSummary) -> str:
    return job_state(
        summary.job, summary.pending, summary.running, summary.done, summary.failed, listed=not summary.error
    )


def submitted_at(job: Job) -> float | None:
    """The job's creation time (``created_at``, UTC, by the submitter's clock) as a Unix time, or None."""
    try:
        return float(calendar.timegm(time.strptime(job.created_at, "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class JobProgress:
    """What a job list shows about one job: state, counts, elapsed and ETA."""

    state: str
    pending: int
    running: int
    done: int
    failed: int
    elapsed_s: float | None  # since submission; frozen when the viewer saw it finish
    eta_s: float | None  # None: unknown; 0: nothing left

    @property
    def total(self) -> int:
        return self.pending + self.running + self.done + self.failed

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0

    def bar(self, width: int = 20) -> str:
        """``[#########-----------]``: done as #, failed as !, the rest as -."""
        if not self.total:
            return "[" + "-" * width + "]"
        done = round(width * self.done / self.total)
        failed = min(width - done, round(width * self.failed / self.total))
        return "[" + "#" * done + "!" * failed + "-" * (width - done - failed) + "]"

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "pending": self.pending,
            "running": self.running,
            "done": self.done,
            "failed": self.failed,
            "total": self.total,
            "percent": round(self.percent, 1),
            "elapsed_s": None if self.elapsed_s is None else round(self.elapsed_s, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }


def progress(
    summary: JobSummary, now: float | None = None, rate: float | None = None, finished_at: float | None = None
) -> JobProgress:
    """State, elapsed and ETA of one summarised job.

    ``now`` is the viewer's wall clock; elapsed compares it with the
    submitter's ``created_at`` (usually the same machine; with drift, only
    the elapsed figure is off, never a decision). ``rate`` is items per second
    seen by this viewer (monitor's RateTracker); without it the ETA assumes
    the pace since submission. ``finished_at``: when this viewer first saw
    the job finished, so the elapsed time stops there.
    """
    now = time.time() if now is None else now
    state = summary_state(summary)
    start = submitted_at(summary.job)
    end = finished_at if (state in FINISHED and finished_at is not None) else now
    elapsed = max(0.0, end - start) if start is not None else None
    left = summary.pending + summary.running
    eta: float | None
    if state in FINISHED or state == CANCELLED:
        eta = 0.0 if state != CANCELLED else None
    elif left == 0:
        eta = 0.0
    elif rate:
        eta = left / rate
    elif elapsed and summary.done:
        eta = left * elapsed / summary.done
    else:
        eta = None
    return JobProgress(state, summary.pending, summary.running, summary.done, summary.failed, elapsed, eta)
