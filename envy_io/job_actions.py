"""What a user can do to a job: one implementation for the CLI, the shell and the web monitor.

Each action validates everything before it writes (bad input raises
``UsageError`` and changes nothing) and returns the lines to show the user.
Only Envy IO writes job files (ENGINEERING §1.1); agents read them.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from envy.notify.events import forget_event
from envy.render.claims import ItemName, ItemPattern, frame_number, reset_items, sort_listing
from envy.render.jobs import Job, find_jobs, list_jobs, save_job
from envy.render.overview import work_folder
from envy.render.remap import PathRemap, RemapError
from envy_io.errors import FarmError, UsageError
from envy_io.job_outputs import JobOutputs, delete_files, outputs_of, size_text
from envy_io.registry import count

if TYPE_CHECKING:
    from envy_io.farm import Farm

# What the submitter may set on a job (jobs.py JOB_STATES), by action name.
STATE_ACTIONS = {"pause": "paused", "resume": "active", "cancel": "cancelled"}
ACTIONS = (*STATE_ACTIONS, "priority", "reset-failed", "archive", "unarchive")
MAX_FRAME_LIST = 200  # characters of a --frames list
MAX_FRAMES = 100_000


def job_remap(farm: Farm, job: Job) -> PathRemap:
    try:
        return PathRemap.parse([*farm.config.remap, *job.remap])
    except RemapError as exc:
        raise UsageError(str(exc)) from None


def jobs_named(farm: Farm, target: str) -> list[Job]:
    """The jobs ``target`` names (id or its start, name, submitted folder); UsageError if none."""
    jobs = find_jobs(farm.layout, target, farm.fs)
    if not jobs:
        known, _ = list_jobs(farm.layout, farm.fs)
        names = ", ".join(j.id for j in known[-5:]) or "none"
        raise UsageError(f"no job matches {target!r} (give an id, a name or the submitted folder; recent: {names})")
    return jobs


def _save(farm: Farm, job: Job) -> None:
    try:
        save_job(farm.layout, job, farm.fs)
    except OSError as exc:
        raise FarmError(f"cannot write job {job.id}: {exc}") from None


def set_state(farm: Farm, target: str, state: str) -> list[str]:
    """Pause (``paused``), resume (``active``) or cancel (``cancelled``) the jobs ``target`` names."""
    if state not in STATE_ACTIONS.values():
        raise UsageError(f"a job can be set {', '.join(STATE_ACTIONS.values())}, not {state!r}")
    lines = []
    for job in jobs_named(farm, target):
        if job.state == state:
            lines.append(f"{job.id} is already {state}")
            continue
        _save(farm, dataclasses.replace(job, state=state))
        lines.append(f"{job.id}: {state}")
    return lines


def parse_priority(value: object) -> int:
    """A priority as typed (``"70"``) or sent (``70``): a whole number from 0 to 100."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UsageError(f"priority must be a whole number from 0 to 100, got {value!r}")
    try:
        return count(0, 100)(str(value).strip())
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"priority {exc}") from None


def set_priority(farm: Farm, target: str, priority: object) -> list[str]:
    value = parse_priority(priority)
    lines = []
    for job in jobs_named(farm, target):
        _save(farm, dataclasses.replace(job, priority=value))
        lines.append(f"{job.id}: priority {value}")
    return lines


def set_archived(farm: Farm, target: str, archived: bool = True) -> list[str]:
    """Hide a job from the lists (or show it again); its files on the share are kept."""
    lines = []
    for job in jobs_named(farm, target):
        if job.archived != archived:
            _save(farm, dataclasses.replace(job, archived=archived))
        lines.append(f"{job.id}: {'archived (files kept)' if archived else 'back in the job list'}")
    return lines


def parse_frames(text: str) -> set[int]:
    """``7,10-12`` -> {7, 10, 11, 12}; UsageError saying what is allowed."""
    allowed = "expected frame numbers and ranges like 7,10-12"
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_FRAME_LIST:
        raise UsageError(f"frames {text!r}: {allowed} (at most {MAX_FRAME_LIST} characters)")
    frames: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d{1,7})\s*(?:-\s*(\d{1,7})\s*)?", part)
        if not m:
            raise UsageError(f"frames {text!r}: {part.strip()!r} is not a number or range; {allowed}")
        low = int(m[1])
        high = int(m[2]) if m[2] else low
        if high < low or len(frames) + high - low + 1 > MAX_FRAMES:
            raise UsageError(f"frames {text!r}: range {part.strip()} is backwards or too long; {allowed}")
        frames.update(range(low, high + 1))
    return frames


def reset(
    farm: Farm,
    target: str,
    states: Sequence[str] = ("failed",),
    frames: Collection[int] | None = None,
    items: Collection[str] | None = None,
) -> list[str]:
    """Bring done and/or failed items back to pending.

    ``frames``: only the items of these frame numbers; ``items``: only these
    items (original names, as the web page lists them). Running and pending
    items are left alone.
    """
    bad = set(states) - {"failed", "done"}
    if bad or not states:
        raise UsageError(f"reset takes failed and/or done items, not {', '.join(sorted(bad)) or 'nothing'}")
    wanted_items = {i.casefold() for i in items} if items is not None else None
    wanted_frames = set(frames) if frames is not None else None

    def only(item: ItemName) -> bool:
        if wanted_items is not None and item.key not in wanted_items:
            return False
        return wanted_frames is None or frame_number(item.base) in wanted_frames

    lines = []
    for job in jobs_named(farm, target):
        folder = work_folder(farm.layout, job, job_remap(farm, job))
        forget_event(farm.layout, job.id, farm.fs)  # first: the job's next finish is a new event to tell
        try:
            n = reset_items(
                folder,
                ItemPattern(job.extensions),
                list(states),
                farm.fs,
                only=None if wanted_items is None and wanted_frames is None else only,
            )
        except OSError as exc:
            raise FarmError(f"cannot reset {folder}: {exc}") from None
        lines.append(f"{job.id}: {n} item(s) back to pending")
    return lines


def run_action(farm: Farm, target: str, action: str, value: object = None) -> list[str]:
    """One named action, as the web page sends it (``pause``, ``priority`` with a value, ...)."""
    if action in STATE_ACTIONS:
        return set_state(farm, target, STATE_ACTIONS[action])
    if action == "priority":
        return set_priority(farm, target, value)
    if action == "reset-failed":
        return reset(farm, target, ["failed"])
    if action in ("archive", "unarchive"):
        return set_archived(farm, target, action == "archive")
    raise UsageError(f"unknown job action {action!r}: actions are {', '.join(ACTIONS)}")


def delete(farm: Farm, target: str, *, with_outputs: bool = False,
           confirm: Callable[[str], bool] | None = None) -> list[str]:
    """Delete jobs' Envy files: the job file, its logs and tasks on the share.

    The user's scenes are never deleted: a frame folder's scenes get their own
    names back (``shot.0007.envy~done~...pov`` -> ``shot.0007.pov``), so the
    folder is as it was before submitting. Its images are kept too, unless
    ``with_outputs`` and ``confirm`` says yes to the question listing them
    (only the files agents recorded writing: envy_io/job_outputs.py). A job
    with frames rendering now is refused (cancel it, then delete it once they
    finish), so no agent completes a frame of a job that is gone.
    """
    jobs = jobs_named(farm, target)
    lines = []
    for job in jobs:
        folder = work_folder(farm.layout, job, job_remap(farm, job))
        try:
            listing = sort_listing(farm.fs.listdir(folder), ItemPattern(job.extensions))
        except FileNotFoundError:
            listing = None
        except OSError as exc:
            raise FarmError(f"cannot list {folder}: {exc.strerror or exc}") from None
        if listing is not None and listing.working:
            raise UsageError(f"{job.name}: {len(listing.working)} frame(s) are rendering; cancel the job "
                             f"(envy-io cancel {job.name}) and delete it when they have finished")
    if with_outputs:
        outputs = {job.id: outputs_of(farm, job, job_remap(farm, job)) for job in jobs}
        if confirm is None:
            raise UsageError("--with-outputs deletes images and asks first: run it on a terminal or in the "
                             "envy-io shell, or add --yes")
        if not confirm(_outputs_question(jobs, outputs)):
            return ["nothing deleted"]
        for job in jobs:
            lines += _delete_outputs(job, outputs[job.id])
    for job in jobs:
        lines.append(_delete_one(farm, job, images_kept=not with_outputs))
    return lines


def _outputs_question(jobs: list[Job], outputs: dict[str, JobOutputs]) -> str:
    files = [f for o in outputs.values() for f in o.files]
    size = sum(o.size for o in outputs.values())
    folders = sorted({str(f) for o in outputs.values() for f in o.folders()})
    where = f" in {', '.join(folders[:3])}{f' and {len(folders) - 3} more folders' if len(folders) > 3 else ''}"
    names = ", ".join(j.name for j in jobs)
    their = "their" if len(jobs) > 1 else "its"
    return (f"Delete {names} and {their} {len(files)} image file(s) ({size_text(size)}){where if files else ''}? "
            "The images cannot be brought back")


def _delete_outputs(job: Job, outputs: JobOutputs) -> list[str]:
    """Delete a job's images first: if one cannot be deleted, the job (and its records) stay to try again."""
    deleted, errors = delete_files(outputs.files)
    lines = [f"{job.id}: deleted {deleted} image file(s) ({size_text(outputs.size)})"]
    lines += [f"{job.id}: not deleted: {line}" for line in outputs.refused]
    if outputs.unrecorded:
        lines.append(f"{job.id}: {outputs.unrecorded} done frame(s) have no record of their images (rendered "
                     "by an older Envy, or the record failed): those images are kept")
    if errors:
        raise FarmError("; ".join([*errors[:3], f"job {job.name} is kept: run delete again when fixed"]))
    return lines


def _delete_one(farm: Farm, job: Job, images_kept: bool = True) -> str:
    job_file = farm.layout.jobs_dir / f"{job.id}.json"
    try:
        farm.fs.unlink(job_file)  # first: agents stop seeing the job at their next listing
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise FarmError(f"cannot delete {job_file}: {exc.strerror or exc}") from None
    restored = 0
    if job.kind != "tasks":
        folder = work_folder(farm.layout, job, job_remap(farm, job))
        try:
            restored = reset_items(folder, ItemPattern(job.extensions), ["done", "failed", "pending"], farm.fs)
        except OSError as exc:
            return f"{job.id}: deleted, but its scenes in {folder} keep their Envy names ({exc.strerror or exc})"
    own = farm.layout.jobs_dir / job.id
    # Only the job's own folder under <share>/jobs, never a link out of it.
    if own.is_dir() and not own.is_symlink() and own.resolve().parent == farm.layout.jobs_dir.resolve():
        shutil.rmtree(own, ignore_errors=True)
    named = f"; {restored} scene(s) have their own names back" if restored else ""
    kept = "scenes and images kept" if images_kept else "scenes kept"
    return f"{job.id}: deleted (its logs and job file; {kept}{named})"
