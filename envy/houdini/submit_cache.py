"""Submitting a cache job: one task file per wedge (``cache.0001.json`` ...), then the job file.

Everything is checked before anything is written: the job's keys (schema.py),
the HIP file (reachable from this machine through the path remap), the
``$NVV`` folder. Then the version folder is reserved, the task files are
written and the job file comes last (submit.write_tasks), so agents never
see half a job. If writing fails, the reserved (still empty) version folder
is removed again.

A task file is the job with its tokens replaced for one wedge, plus where
it came from (when, by whom, from which job file): the runner copies that
into the descriptive JSON next to the cache. Agents claim task files by
renaming them, and a task file is never deleted: done, failed or crashed, it
is still there to read or reset.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envy.houdini.schema import MAX_WEDGES, CacheJob, CacheJobError, job_parms, version_roots
from envy.houdini.versions import reserve_version_folder
from envy.platform.host import host_name, user_name
from envy.render.jobs import Job, list_jobs, new_job_id
from envy.render.remap import PathRemap, RemapError
from envy.render.submit import TASK_EXT, waits_for, write_tasks
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

TASK_FORMAT = 1
_HIP_VAR_RE = re.compile(r"\$(?:\{HIP\}|HIP(?![A-Za-z0-9_]))")
_HIPNAME_VAR_RE = re.compile(r"\$(?:\{HIPNAME\}|HIPNAME(?![A-Za-z0-9_]))")


def cache_task_name(number: int, count: int) -> str:
    return f"cache.{number:0{max(4, len(str(count)))}d}{TASK_EXT}"


def cache_tasks(
    job: CacheJob, wedges: int, *, version: str | None = None, version_folder: str | None = None,
    created_at: str = "", created_by: str = "", created_host: str = "", job_file: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(task file name, task) for job numbers 1..wedges, with ``$NVJ``/``$NVV`` replaced."""
    tasks = []
    for number in range(1, wedges + 1):
        task = {
            "type": "hython",
            "format": TASK_FORMAT,
            "name": job.display_name,
            "hip": job.hip,
            "node": job.node,
            "button": job.button,
            "parms": job_parms(job, number, version),
            "parms_as_written": dict(job.parms),
            "output_parm": job.output_parm,
            "job_number": number,
            "job_count": wedges,
            "version": version,
            "version_folder": version_folder,
            "created_at": created_at,
            "created_by": created_by,
            "created_host": created_host,
            "job_file": job_file,
            "comment": job.comment,
        }
        tasks.append((cache_task_name(number, wedges), task))
    return tasks


@dataclass(frozen=True)
class CheckedCacheJob:
    """A cache job that passed every check that can be made before writing."""

    job: CacheJob
    wedges: int
    priority: int
    remap: tuple[str, ...]
    version_root: str | None  # the folder before $NVV, as the submitter writes it
    local_version_root: Path | None


def check_cache_job(
    job: CacheJob,
    *,
    wedges: int | None = None,
    priority: int | None = None,
    remap: Sequence[str] = (),
    job_file: str | None = None,
    local_os: str | None = None,
    local_remap: Sequence[str] = (),
) -> CheckedCacheJob:
    """Everything ``submit_cache`` checks, without writing anything (``envy-io cache --check``).

    ``remap`` rules are stored in the job (for the agents); ``local_remap``
    rules (e.g. this machine's config) only help this machine find the files.
    """
    where = job_file or "cache job"
    count = job.wedges if wedges is None else wedges
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_WEDGES:
        raise CacheJobError(f"--wedges must be a whole number from 1 to {MAX_WEDGES}, got {count!r}")
    prio = job.priority if priority is None else priority
    if isinstance(prio, bool) or not isinstance(prio, int) or not 0 <= prio <= 100:
        raise CacheJobError(f"--priority must be from 0 to 100, got {prio!r}")
    rules = (*job.remap, *remap)
    try:
        paths = PathRemap.parse([*rules, *local_remap])
    except RemapError as exc:
        raise CacheJobError(f"{where}: {exc}") from None

    def local(path: str) -> Path:
        return Path(paths.apply(path, local_os)) if local_os else Path(path)

    hip = local(job.hip)
    if not hip.is_file():
        here = f" (here: {hip})" if str(hip) != job.hip else ""
        raise CacheJobError(f"{where}: HIP file {job.hip} not found{here}; for another OS's path add a remap rule")
    root = _version_root(job, where)
    return CheckedCacheJob(job, count, prio, rules, root, local(root) if root is not None else None)


def submit_cache(
    layout: ShareLayout,
    job: CacheJob,
    *,
    wedges: int | None = None,
    priority: int | None = None,
    name: str | None = None,
    paused: bool = False,
    remap: Sequence[str] = (),
    job_file: str | None = None,
    fs: ShareFS,
    local_os: str | None = None,
    local_remap: Sequence[str] = (),
    after: Sequence[str] = (),
) -> Job:
    """Check ``job`` and write its wedges as one Envy job. ``CacheJobError`` (one line) before writing anything."""
    layout.require(fs)
    checked = check_cache_job(job, wedges=wedges, priority=priority, remap=remap, job_file=job_file,
                              local_os=local_os, local_remap=local_remap)
    if name is not None:
        job = dataclasses.replace(job, name=name)
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    version = version_folder = None
    reserved: Path | None = None
    if checked.version_root is not None and checked.local_version_root is not None:
        reserved = reserve_version_folder(checked.local_version_root)
        version = reserved.name
        version_folder = _join(checked.version_root, version)
    record = Job(
        id=new_job_id(job.display_name, now), name=job.display_name, kind="tasks", renderer="hython",
        source=job.hip, extensions=[TASK_EXT], priority=checked.priority, state="paused" if paused else "active",
        output=version_folder, max_retries=job.max_retries, remap=list(checked.remap), created_by=user_name(),
        created_host=host_name(), created_at=stamp,
        settings={"node": job.node, "button": job.button, "wedges": checked.wedges, "version": version,
                  "job_file": job_file},
    )
    tasks = cache_tasks(
        job, checked.wedges, version=version, version_folder=version_folder, created_at=stamp,
        created_by=record.created_by, created_host=record.created_host, job_file=job_file,
    )
    try:
        waits_for(record, after, list_jobs(layout, fs)[0])
        record.validate()
        write_tasks(layout, record, tasks, fs)
    except BaseException:
        if reserved is not None:
            try:
                reserved.rmdir()
            except OSError:
                pass
        raise
    return record


def _version_root(job: CacheJob, where: str) -> str | None:
    """The folder before ``$NVV`` (``$HIP`` and ``$HIPNAME`` expanded), or None when the job has no ``$NVV``."""
    roots = version_roots(job)
    if not roots:
        return None
    hip_dir, _, hip_file = job.hip.replace("\\", "/").rpartition("/")
    hip_name = hip_file.rsplit(".", 1)[0]
    cleaned = set()
    for text in roots:
        if not text or text[-1] not in "/\\":
            raise CacheJobError(f"{where}: $NVV must be a whole folder name, like .../smoke/$NVV/smoke.$F4.bgeo.sc")
        folder = _HIPNAME_VAR_RE.sub(hip_name, _HIP_VAR_RE.sub(hip_dir or ".", text[:-1]))
        if "$" in folder or "`" in folder:
            raise CacheJobError(
                f"{where}: the folder before $NVV must be a plain path (only $HIP and $HIPNAME are expanded), "
                f"got {text[:-1]!r}"
            )
        cleaned.add(folder)
    if len({c.replace("\\", "/").casefold() for c in cleaned}) > 1:
        raise CacheJobError(f"{where}: $NVV is used under different folders: {', '.join(sorted(cleaned))}")
    return sorted(cleaned)[0]


def _join(folder: str, name: str) -> str:
    """``folder`` + ``name`` with the separator the submitter used."""
    sep = "\\" if "\\" in folder and "/" not in folder else "/"
    return folder.rstrip("/\\") + sep + name
