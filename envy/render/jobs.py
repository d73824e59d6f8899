"""Jobs on the share: ``jobs/<id>.json``, written only by Envy IO.

A job points at the items agents claim (see claims.py):

* ``frames``: a folder of per-frame scene files (``shot.0001.vrscene`` ...),
  claimed in place;
* ``tasks``: task files (JSON) in ``jobs/<id>/tasks/``, made by Envy IO for
  frame-range jobs (``.blend``, animated ``.pov``), husk renders and Houdini
  caches.

Paths are stored as the submitter wrote them (``Z:/proj/...``); each agent
converts them for its own OS with the path remap rules.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from envy.share.atomic import atomic_write_json, read_json
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.share.names import is_junk
from envy.share.validate import (
    BOOL,
    DICT,
    INT,
    OPT_INT,
    OPT_TEXT,
    TEXT,
    TEXT_LIST,
    check_fields,
)

log = logging.getLogger(__name__)

JOB_STATES = ("active", "paused", "cancelled")
KINDS = ("frames", "tasks")
_ID_RE = re.compile(r"^\d{8}-\d{6}-[a-z0-9_-]{1,40}-[0-9a-f]{4}$")


class JobError(ValueError):
    """A bad job or job request: one line saying what and what is allowed."""


@dataclass
class Job:
    id: str
    name: str
    kind: str
    renderer: str
    source: str
    extensions: list[str]
    priority: int = 50
    state: str = "active"
    output: str | None = None
    frames: str | None = None
    chunk: int = 1
    max_retries: int | None = None
    remap: list[str] = field(default_factory=list)
    created_by: str = ""
    created_host: str = ""
    created_at: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # renderer-specific extras (e.g. husk delegate)
    archived: bool = False  # hidden from job lists; its files are kept (envy-io archive)
    after: list[str] = field(default_factory=list)  # ids of the jobs this one waits for (dependencies.py)
    timeout: int | None = None  # seconds a render may run (None: the farm's render_timeout); see limits.py
    stall: int | None = None  # seconds a render may print nothing (None: the farm's render_stall)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Job:
        if not isinstance(data, dict):
            raise JobError("a job file must hold a JSON object")
        known = {f.name for f in fields(cls)}
        missing = {"id", "name", "kind", "renderer", "source", "extensions"} - set(data)
        if missing:
            raise JobError(f"job file lacks {', '.join(sorted(missing))}")
        _check_types(data)
        job = cls(**{k: v for k, v in data.items() if k in known})
        job.validate()
        return job

    def validate(self) -> None:
        _check_types(asdict(self))
        if not _ID_RE.match(self.id):
            raise JobError(f"job id {self.id!r} is not of the form YYYYMMDD-HHMMSS-name-xxxx")
        if self.kind not in KINDS:
            raise JobError(f"job kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.state not in JOB_STATES:
            raise JobError(f"job state {self.state!r} is not one of {', '.join(JOB_STATES)}")
        if not isinstance(self.priority, int) or isinstance(self.priority, bool) or not 0 <= self.priority <= 100:
            raise JobError(f"priority must be a whole number from 0 to 100, got {self.priority!r}")
        if not isinstance(self.extensions, list) or not all(
            isinstance(e, str) and e.startswith(".") for e in self.extensions
        ):
            raise JobError("extensions must be a list like ['.vrscene']")
        if not isinstance(self.archived, bool):
            raise JobError(f"archived must be true or false, got {self.archived!r}")
        if self.chunk < 1 or self.chunk > MAX_CHUNK:
            raise JobError(f"chunk must be a whole number from 1 to {MAX_CHUNK}, got {self.chunk!r}")
        if self.max_retries is not None and not 0 <= self.max_retries <= 1000:
            raise JobError(f"max_retries must be from 0 to 1000, got {self.max_retries!r}")
        if len(self.after) > MAX_AFTER or not all(_ID_RE.match(a) for a in self.after) or self.id in self.after:
            raise JobError(f"after must be a list of at most {MAX_AFTER} other jobs' ids, got {self.after!r}")
        for key in ("timeout", "stall"):
            value = getattr(self, key)
            if value is not None and not 0 <= value <= MAX_LIMIT_S:
                raise JobError(f"{key} must be from 0 to {MAX_LIMIT_S} seconds, got {value!r}")

    def sort_key(self) -> tuple[int, str]:
        """Higher priority first, then older first (ids start with the creation time)."""
        return (-self.priority, self.id)

    def tasks_dir(self, layout: ShareLayout) -> Path:
        return layout.jobs_dir / self.id / "tasks"

    def logs_dir(self, layout: ShareLayout) -> Path:
        return layout.jobs_dir / self.id / "logs"


MAX_CHUNK = 100_000
MAX_AFTER = 32  # jobs one job may wait for: a cache and its sims, not a whole show
MAX_LIMIT_S = 30 * 24 * 3600  # a render timeout or stall limit: at most 30 days
_JOB_FIELDS = {
    "id": TEXT, "name": TEXT, "kind": TEXT, "renderer": TEXT, "source": TEXT, "extensions": TEXT_LIST,
    "priority": INT, "state": TEXT, "output": OPT_TEXT, "frames": OPT_TEXT, "chunk": INT,
    "max_retries": OPT_INT, "remap": TEXT_LIST, "created_by": TEXT, "created_host": TEXT, "created_at": TEXT,
    "settings": DICT, "archived": BOOL, "after": TEXT_LIST, "timeout": OPT_INT, "stall": OPT_INT,
}


def _check_types(data: dict[str, Any]) -> None:
    try:
        check_fields(data, _JOB_FIELDS, "job")
    except ValueError as exc:
        raise JobError(str(exc)) from None


def new_job_id(name: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")[:40] or "job"
    return f"{stamp}-{slug}-{secrets.token_hex(2)}"


def job_path(layout: ShareLayout, job_id: str) -> Path:
    return layout.jobs_dir / f"{job_id}.json"


def save_job(layout: ShareLayout, job: Job, fs: ShareFS) -> None:
    job.validate()
    atomic_write_json(job_path(layout, job.id), job.to_json(), fs)


def load_job(layout: ShareLayout, job_id: str, fs: ShareFS) -> Job:
    try:
        data = read_json(job_path(layout, job_id), fs, "job")
    except FileNotFoundError:
        raise JobError(f"no job {job_id!r} on the share") from None
    except ValueError as exc:
        raise JobError(str(exc)) from None
    return Job.from_json(data)


def read_job_file(layout: ShareLayout, fs: ShareFS, name: str) -> Job:
    """``jobs/<name>`` (bounded, validated); FileNotFoundError, OSError or ValueError as it fails."""
    return Job.from_json(read_json(layout.jobs_dir / name, fs, "job"))


def list_jobs(layout: ShareLayout, fs: ShareFS, strict: bool = False) -> tuple[list[Job], list[str]]:
    """All readable jobs, oldest first; corrupt files become warnings (a rendering agent reads
    them through job_files.py instead, which skips unchanged files).

    ``strict``: an unreadable jobs folder raises OSError instead of reading as
    "no jobs" (an agent must not take an outage for an empty farm).
    """
    jobs: list[Job] = []
    warnings: list[str] = []
    try:
        names = fs.listdir(layout.jobs_dir)
    except OSError as exc:
        if strict:
            raise
        return [], [f"cannot list {layout.jobs_dir}: {exc}"]
    for name in sorted(names):
        if is_junk(name) or not name.endswith(".json"):
            continue
        try:
            jobs.append(read_job_file(layout, fs, name))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, TypeError) as exc:
            warnings.append(f"skipped job file {name}: {exc}")
    return jobs, warnings


def find_jobs(layout: ShareLayout, target: str, fs: ShareFS) -> list[Job]:
    """Jobs named by id, id prefix, name, or source folder (as given to submit)."""
    jobs, _ = list_jobs(layout, fs)
    return match_jobs(jobs, target)


def match_jobs(jobs: Sequence[Job], target: str) -> list[Job]:
    """``find_jobs`` on jobs already read."""
    norm = _norm(target)
    exact = [j for j in jobs if j.id == target or j.name == target or _norm(j.source) == norm]
    if exact:
        return exact
    return [j for j in jobs if j.id.startswith(target) or j.id.endswith(target)]


def _norm(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").casefold()


def select_active(jobs: Sequence[Job], targets: Sequence[str]) -> list[Job]:
    """Active jobs by priority then age; when ``targets`` are given, only the jobs they name."""
    chosen = [j for j in jobs if j.state == "active"]
    if targets:
        wanted = {_norm(t) for t in targets}
        chosen = [j for j in chosen if {j.id.casefold(), j.name.casefold(), _norm(j.source)} & wanted
                  or any(j.id.startswith(t) for t in targets)]
    return sorted(chosen, key=Job.sort_key)
