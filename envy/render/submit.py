"""Registering a render job on the share (``envy-io submit``).

A folder of per-frame scene files becomes a ``frames`` job: agents claim the
files in place. A scene that holds every frame (``.blend``, an animated
``.pov``) becomes a ``tasks`` job: one JSON task file per ``--chunk N``
frames in ``jobs/<id>/tasks/``, over ``--frames A-B`` or the range the scene
itself says (envy/render/scene_range.py); a still ``.pov`` is one task.
Task files are written before the job file, so agents never see a job whose
tasks are half there.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envy.platform.host import host_name, user_name
from envy.render.claims import ItemPattern, sort_listing
from envy.render.confine import MAX_TASK_FRAMES
from envy.render.dependencies import check_no_cycle, resolve_after
from envy.render.jobs import Job, JobError, list_jobs, new_job_id, save_job
from envy.render.profiles import RendererProfile, profile_for_file
from envy.render.remap import PathRemap
from envy.render.scene_range import scene_frames
from envy.share.atomic import atomic_write_json
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.share.names import is_junk

TASK_EXT = ".json"
STILL_TASK = "still"  # one image of a scene file (a .pov without clock): envy/render/still_task.py


@dataclass
class SubmitRequest:
    source: str
    frames: str | None = None
    chunk: int = 1
    renderer: str | None = None
    priority: int = 50
    output: str | None = None
    name: str | None = None
    max_retries: int | None = None
    remap: Sequence[str] = ()
    paused: bool = False
    settings: dict = field(default_factory=dict)
    again: bool = False  # submit a source that is already a job as a second job
    renderers: Mapping[str, Any] = field(default_factory=dict)  # config `renderers`: Blender to ask about a .blend
    after: Sequence[str] = ()  # jobs (names or ids) this one waits for (dependencies.py)
    timeout: int | None = None  # seconds a render may run (None: the farm's default)
    stall: int | None = None  # seconds a render may print nothing (None: the farm's default)
    submitter: str | None = None  # who submits (None: the login name); Envy IO gives the OS account in strict mode


# Folder names that say nothing about the shot: the job is named after the folder above.
GENERIC_FOLDERS = frozenset({"frames", "frame", "render", "renders", "scenes", "scene", "export", "exports",
                             "out", "output", "pov", "povray", "blend", "vrscene", "ass", "rib", "usd", "images"})


def readable_name(local: Path) -> str:
    """A short name people can type: the folder's (or the one above a generic ``frames``), or the scene's stem."""
    if local.is_dir():
        parts = [p for p in local.parts if p not in ("/", "\\")]
        name = parts[-1] if parts else "job"
        if name.casefold() in GENERIC_FOLDERS and len(parts) > 1:
            name = parts[-2]
    else:
        name = local.name.split(".")[0] or local.stem
    name = re.sub(r"[^\w.-]+", "-", name).strip("-.") or "job"
    return name[:40]


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, else ``base-2``, ``base-3``... (names compared as the share compares them: case-folded)."""
    folded = {t.casefold() for t in taken}
    if base.casefold() not in folded:
        return base
    n = 2
    while f"{base}-{n}".casefold() in folded:
        n += 1
    return f"{base}-{n}"


class AlreadySubmitted(JobError):
    """The source is already a job: the CLI needs ``--again``, the shell asks (issue 11 §9)."""


def _named(req: SubmitRequest, local: Path, existing: Sequence[Job]) -> str:
    """The job's name, after refusing a second job of the same source unless ``again`` (issue 11 §9)."""
    same = [j for j in existing if _norm(j.source) == _norm(req.source) and j.state != "cancelled"]
    if same and not req.again:
        j = same[-1]
        raise AlreadySubmitted(f"{req.source} is already job {j.name} ({j.id}); see it with: envy-io jobs {j.name} "
                       f"(re-render frames with: envy-io reset {j.name} --failed), "
                       "or submit it as a new job with --again")
    taken = {j.name for j in existing}
    return unique_name(req.name or readable_name(local), taken) if not req.name else req.name


def _norm(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").casefold()


# More frames than any shot; each becomes task files on the share.
MAX_JOB_FRAMES = MAX_TASK_FRAMES


def parse_frames(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", text)
    if not m:
        raise JobError(f"--frames {text!r} is not a range: use A-B, e.g. 1-240, or a single frame")
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) is not None else start
    if end < start:
        raise JobError(f"--frames {text!r} ends before it starts")
    if end - start + 1 > MAX_JOB_FRAMES:
        raise JobError(f"--frames {text!r} is {end - start + 1} frames; a job holds at most {MAX_JOB_FRAMES}")
    return start, end


def _detect_renderer(names: Sequence[str], profiles: Mapping[str, RendererProfile]) -> RendererProfile:
    votes = Counter(p.name for p in (profile_for_file(n, profiles) for n in names) if p is not None)
    if not votes:
        known = sorted({e for p in profiles.values() for e in p.extensions})
        raise JobError(f"no scene files found (known extensions: {', '.join(known)})")
    return profiles[votes.most_common(1)[0][0]]


def submit(layout: ShareLayout, req: SubmitRequest, profiles: Mapping[str, RendererProfile],
           fs: ShareFS, local_os: str | None = None) -> Job:
    """Validate ``req`` and write the job (and its task files). Nothing is written on bad input."""
    layout.require(fs)
    if req.chunk < 1:
        raise JobError(f"--chunk must be 1 or more, got {req.chunk}")
    if not 0 <= req.priority <= 100:
        raise JobError(f"--priority must be from 0 to 100, got {req.priority}")
    remap = PathRemap.parse(list(req.remap))
    local = Path(remap.apply(req.source, local_os)) if local_os else Path(req.source)
    if req.renderer and req.renderer.lower() not in profiles:
        raise JobError(f"unknown renderer {req.renderer!r} (known: {', '.join(sorted(profiles))})")
    now = time.time()
    common = dict(
        priority=req.priority, state="paused" if req.paused else "active", output=req.output,
        max_retries=req.max_retries, remap=list(req.remap), created_by=req.submitter or user_name(),
        created_host=host_name(),
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), settings=dict(req.settings),
        timeout=req.timeout, stall=req.stall,
    )
    if local.is_dir():
        if req.frames:
            raise JobError("--frames is for a scene file that holds every frame; a folder's frames are its files")
        names = [n for n in fs.listdir(local) if not is_junk(n)]
        profile = profiles[req.renderer.lower()] if req.renderer else _detect_renderer(names, profiles)
        listing = sort_listing(names, ItemPattern(profile.extensions))
        if not (listing.pending or listing.working or listing.done or listing.failed):
            raise JobError(f"{req.source}: no {'/'.join(profile.extensions)} files for renderer {profile.name}")
        existing = list_jobs(layout, fs)[0]
        name = _named(req, local, existing)
        job = Job(id=new_job_id(local.name, now), name=name, kind="frames", renderer=profile.name,
                  source=req.source, extensions=list(profile.extensions), **common)  # type: ignore[arg-type]
        waits_for(job, req.after, existing)
        save_job(layout, job, fs)
        return job
    if local.is_file():
        file_profile = profiles[req.renderer.lower()] if req.renderer else profile_for_file(local.name, profiles)
        if file_profile is None:
            raise JobError(f"{req.source}: no renderer for this file type")
        if not file_profile.range_argv:
            raise JobError(
                f"{req.source}: renderer {file_profile.name} renders one file per frame; "
                "submit the folder of frame files"
            )
        existing = list_jobs(layout, fs)[0]
        name = _named(req, local, existing)  # before asking Blender: a resubmit is refused at once
        resolve_after(existing, req.after, own_name=name)  # likewise a bad --after
        # The scene's own range, step and output win unless the job sets them (issue 11 §4).
        scene = scene_frames(local, req.source, file_profile, parse_frames(req.frames) if req.frames else None,
                             req.output, req.renderers)
        common["settings"] = {**scene.settings, **req.settings}
        job = Job(id=new_job_id(local.stem, now), name=name, kind="tasks", renderer=file_profile.name,
                  source=req.source, extensions=[TASK_EXT], frames=scene.text, chunk=req.chunk, **common)  # type: ignore[arg-type]
        waits_for(job, req.after, existing)
        job.validate()
        stem = local.stem.split(".")[0]
        if scene.still:
            write_tasks(layout, job, [(f"{stem}{TASK_EXT}", {"type": STILL_TASK})], fs)
            return job
        write_range_tasks(layout, job, stem, scene.start, scene.end, req.chunk, fs, scene.step)
        save_job(layout, job, fs)
        return job
    raise JobError(f"{req.source}: no such file or folder (for another OS's path, add --remap FROM,TO)")


def waits_for(job: Job, after: Sequence[str], existing: Sequence[Job]) -> None:
    """Record the jobs ``job`` waits for (``--after``), refusing unknown ones and loops, before anything is written."""
    job.after = resolve_after(existing, after, own_name=job.name)
    check_no_cycle(job.id, job.after, existing)


def write_range_tasks(layout: ShareLayout, job: Job, stem: str, start: int, end: int, chunk: int, fs: ShareFS,
                      step: int = 1) -> int:
    """One task per ``chunk`` frames of start..end every ``step`` (a chunk starts on a frame the scene renders)."""
    folder = job.tasks_dir(layout)
    fs.makedirs(folder)
    width = max(4, len(str(end)))
    frames = range(start, end + 1, step)
    count = 0
    for i in range(0, len(frames), chunk):
        first, last = frames[i], frames[min(i + chunk, len(frames)) - 1]
        task: dict[str, object] = {"type": "range", "start": first, "end": last}
        if step != 1:
            task["step"] = step
        atomic_write_json(folder / f"{stem}.{first:0{width}d}-{last:0{width}d}{TASK_EXT}", task, fs)
        count += 1
    return count


def write_tasks(layout: ShareLayout, job: Job, tasks: Sequence[tuple[str, dict]], fs: ShareFS) -> None:
    """Write prepared task files (husk, cache jobs), then the job file last."""
    folder = job.tasks_dir(layout)
    fs.makedirs(folder)
    for name, task in tasks:
        if not name.endswith(TASK_EXT) or "/" in name or "\\" in name or ".envy~" in name:
            raise JobError(f"bad task file name {name!r}")
        atomic_write_json(folder / name, task, fs)
    save_job(layout, job, fs)
