"""A job's rendered images, for ``delete --with-outputs``: only the files agents recorded writing.

The agents record each completed frame's files (envy/render/output_record.py);
nothing here guesses a file from a naming rule. Every recorded path is checked
again before anything is deleted, since the records lie on a share anyone in
the class can write: it must be inside the share or a project root, not inside
Envy's own files, a plain file (never a link or folder), and not a scene file
of the job (a scene is never an output).
"""

from __future__ import annotations

import os
import stat as stat_mod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from envy.platform.host import os_name
from envy.render.claims import ItemPattern, sort_listing
from envy.render.confine import Confinement, PathRefused
from envy.render.jobs import Job
from envy.render.output_record import RecordedFile, read_records
from envy.render.overview import work_folder
from envy.render.remap import PathRemap

if TYPE_CHECKING:
    from envy_io.farm import Farm


@dataclass
class JobOutputs:
    """What deleting a job's outputs would delete, and what it cannot account for."""

    files: list[Path] = field(default_factory=list)
    size: int = 0
    unrecorded: int = 0  # done frames with no record (rendered before records, or the record failed)
    refused: list[str] = field(default_factory=list)  # one line per record or path that is not deleted

    def folders(self) -> list[Path]:
        return sorted({f.parent for f in self.files})


def outputs_of(farm: Farm, job: Job, remap: PathRemap) -> JobOutputs:
    """The job's recorded output files that exist now and may be deleted (``remap``: the job's, for this machine)."""
    records, problems = read_records(farm.layout, job.id, farm.fs)
    found = JobOutputs(refused=[f"output record {p}" for p in problems])
    confinement = Confinement.for_job(farm.layout.jobs_dir / job.id, farm.config.project_roots, farm.layout.root)
    scene_exts = {e.lower() for e in job.extensions}
    seen: set[Path] = set()
    for base, recorded in records.items():
        for entry in recorded:
            try:
                path = confinement.check(_local(farm, entry, remap), "recorded output")
            except PathRefused as exc:
                found.refused.append(f"{base}: {exc}")
                continue
            if path in seen or path.suffix.lower() in scene_exts:
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # deleted already, or never published
            except OSError as exc:
                found.refused.append(f"{base}: cannot check {path} ({exc.strerror or exc})")
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                found.refused.append(f"{base}: {path} is not a plain file; not deleting it")
                continue
            seen.add(path)
            found.files.append(path)
            found.size += st.st_size
    if job.kind != "tasks":
        found.unrecorded = _done_without_record(farm, job, set(records), remap)
    return found


def _local(farm: Farm, entry: RecordedFile, remap: PathRemap) -> str:
    """A recorded file as this machine sees it: under our share root, or through the remap."""
    if entry.share is not None:
        return str(farm.layout.root.joinpath(*entry.share.split("/")))
    return remap.apply(entry.path or "", os_name())


def _done_without_record(farm: Farm, job: Job, recorded: set[str], remap: PathRemap) -> int:
    try:
        folder = work_folder(farm.layout, job, remap)
        listing = sort_listing(farm.fs.listdir(folder), ItemPattern(job.extensions))
    except OSError:
        return 0
    return sum(1 for item in listing.done if item.base not in recorded)


def delete_files(files: list[Path]) -> tuple[int, list[str]]:
    """Delete ``files``; the number deleted and one line per file that could not be."""
    deleted, errors = 0, []
    for path in files:
        try:
            os.unlink(path)
            deleted += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            errors.append(f"cannot delete {path}: {exc.strerror or exc}")
    return deleted, errors


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    amount = size / 1024
    for unit in ("KB", "MB"):
        if amount < 1024:
            return f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"
