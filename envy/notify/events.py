"""The event marker: ``jobs/<id>/finished.json``, made once each time a job finishes.

When an agent marks an item done or failed for good and then sees nothing of
the job pending or running, the job has finished (``complete`` or ``complete
with failures``, envy/render/job_state.py). Several agents may see that at
once (two finishing the last two frames together); only the one that creates
the marker sends the notifications. The marker is created with O_CREAT|O_EXCL,
as a seat is (envy/policy/seats.py): the file server decides, and exactly one
create succeeds. It carries the winner's identity, so an agent whose create
reported an error can read it back and see whether it won (§1.3).

The marker is also what Envy IO watches on the submitter's machine for the
desktop notification (envy_io/job_notices.py). ``envy-io reset`` removes it,
so the job's next finish is a new event.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from envy.render.job_state import COMPLETE, COMPLETE_WITH_FAILURES
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout, make_dirs_within
from envy.share.validate import INT, TEXT, check_fields

log = logging.getLogger(__name__)

MARKER = "finished.json"
EVENT_STATES = (COMPLETE, COMPLETE_WITH_FAILURES)
MAX_MARKER_BYTES = 16_384
_FIELDS = {"job": TEXT, "name": TEXT, "user": TEXT, "submit_host": TEXT, "state": TEXT, "done": INT,
           "failed": INT, "host": TEXT, "pid": INT, "nonce": TEXT, "at": TEXT}


@dataclass(frozen=True)
class JobEvent:
    """One finish of one job, as the marker records it."""

    job: str  # the job's id
    name: str
    user: str  # who submitted it: whose notify settings apply
    submit_host: str  # where it was submitted: where the desktop notice shows
    state: str  # complete, or complete with failures
    done: int
    failed: int
    host: str  # the agent that won the marker
    pid: int
    nonce: str
    at: str  # UTC, by the winner's clock (for people only)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> JobEvent:
        if not isinstance(data, dict):
            raise ValueError("an event marker must hold a JSON object")
        check_fields(data, _FIELDS, "event marker")
        missing = set(_FIELDS) - set(data)
        if missing:
            raise ValueError(f"event marker lacks {', '.join(sorted(missing))}")
        event = cls(**{k: data[k] for k in _FIELDS})
        if event.state not in EVENT_STATES:
            raise ValueError(f"event marker state {event.state!r} is not one of {', '.join(EVENT_STATES)}")
        return event

    @property
    def key(self) -> str:
        """Tells one finish from the next (after a reset) for a viewer that saw the last one."""
        return f"{self.job}/{self.nonce}/{self.at}"

    def message(self) -> str:
        """One line in users' words, for every channel."""
        total = self.done + self.failed
        if self.state == COMPLETE:
            return f"Envy: job {self.name} is complete ({self.done} of {total} done)"
        return f"Envy: job {self.name} is complete with failures ({self.failed} of {total} failed; " \
               f"see: envy-io jobs {self.name} --frames)"


def marker_path(layout: ShareLayout, job_id: str) -> Path:
    return layout.jobs_dir / job_id / MARKER


def new_event(job_id: str, name: str, user: str, submit_host: str, state: str, done: int, failed: int,
              host: str, pid: int, nonce: str) -> JobEvent:
    return JobEvent(job_id, name, user, submit_host, state, done, failed, host, pid, nonce,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def claim_event(layout: ShareLayout, event: JobEvent, fs: ShareFS) -> bool:
    """Create the job's marker for ``event``; True only for the one agent whose create won."""
    path = marker_path(layout, event.job)
    try:
        make_dirs_within(layout.jobs_dir, event.job)  # never a tree under an unmounted share
        fs.write_new(path, json.dumps(event.to_json()).encode("utf-8"))
        return True
    except FileExistsError:
        pass
    except OSError as exc:
        log.info("creating %s reported %s; reading it back", path, exc)
    # After an error the marker may still be ours (a create retransmitted over NFS): read it.
    theirs = read_event(layout, event.job, fs)
    return theirs is not None and (theirs.host, theirs.pid, theirs.nonce) == (event.host, event.pid, event.nonce)


def read_event(layout: ShareLayout, job_id: str, fs: ShareFS) -> JobEvent | None:
    """The job's marker, or None when there is none or it cannot be read (bounded, checked: it is on the share)."""
    try:
        data = json.loads(fs.read_bounded(marker_path(layout, job_id), MAX_MARKER_BYTES).decode("utf-8"))
        return JobEvent.from_json(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        log.debug("cannot read the event marker of %s: %s", job_id, exc)
        return None


def forget_event(layout: ShareLayout, job_id: str, fs: ShareFS) -> None:
    """Remove the job's marker (``envy-io reset``), so that its next finish is told again."""
    try:
        fs.unlink(marker_path(layout, job_id))
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove the event marker of %s: %s", job_id, exc)
