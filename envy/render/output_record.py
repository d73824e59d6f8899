"""Which image files a finished frame wrote, recorded by the agent that completed it.

``envy-io delete JOB --with-outputs`` deletes a job's images. It deletes only
what an agent recorded here, ``jobs/<job id>/outputs/<item>.json``, written
once per completed frame beside its thumbnail: the files are never guessed
from naming rules, so a file Envy did not write is never deleted. A path
inside the share is kept relative to it (every machine mounts the share
elsewhere: ``Z:/`` here, ``/mnt/farm`` there); one outside (a project root) is
kept as this agent sees it, and the reader maps it with the farm's remap.

Like the thumbnail, the record never fails or delays a frame: an error is logged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from envy.share.atomic import atomic_write
from envy.share.bounded import read_share_json
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout, make_dirs_within
from envy.share.names import is_temp

log = logging.getLogger(__name__)

OUTPUTS_FOLDER = "outputs"
MAX_FILES = 1000  # a chunk of frames, tiles included; more is not a record an agent wrote
MAX_PATH = 4096


@dataclass(frozen=True)
class RecordedFile:
    """One file a frame wrote: ``share`` (a path relative to the share, ``/``-separated) or ``path``."""

    share: str | None = None
    path: str | None = None


def outputs_dir(layout: ShareLayout, job_id: str) -> Path:
    return layout.jobs_dir / job_id / OUTPUTS_FOLDER


def record_outputs(layout: ShareLayout, job_id: str, item_base: str, files: list[Path], fs: ShareFS) -> None:
    """Record ``files`` (this machine's paths) as what ``item_base`` wrote. Never raises."""
    if not files:
        return
    root = Path(os.path.abspath(layout.root))
    entries: list[dict[str, str]] = []
    for f in files[:MAX_FILES]:
        path = Path(os.path.abspath(f))
        if root in path.parents:
            entries.append({"share": PurePosixPath(*path.relative_to(root).parts).as_posix()})
        else:
            entries.append({"path": str(path)})
    try:
        folder = make_dirs_within(layout.jobs_dir, job_id, OUTPUTS_FOLDER)
        data = json.dumps({"item": item_base, "files": entries}, indent=1).encode("utf-8")
        atomic_write(folder / f"{item_base}.json", data, fs)
    except OSError as exc:
        log.warning("could not record the outputs of %s: %s", item_base, exc)


def read_records(layout: ShareLayout, job_id: str, fs: ShareFS) -> tuple[dict[str, list[RecordedFile]], list[str]]:
    """Item base -> its recorded files, and one line per record that could not be used.

    The records are on the share, writable by anyone who can write it: each is
    bounded and checked here, and the caller still confines every path."""
    folder = outputs_dir(layout, job_id)
    try:
        names = sorted(fs.listdir(folder))
    except FileNotFoundError:
        return {}, []
    records: dict[str, list[RecordedFile]] = {}
    problems: list[str] = []
    for name in names:
        if not name.endswith(".json") or is_temp(name):
            continue
        try:
            records[name[: -len(".json")]] = _parse(read_share_json(fs, folder / name, "output record"))
        except (OSError, ValueError) as exc:
            problems.append(f"{name}: {exc}")
    return records, problems


def recorded_files(layout: ShareLayout, job_id: str, item_base: str, fs: ShareFS,
                   local: Callable[[str], Path]) -> list[Path]:
    """What the record of ``item_base`` says an earlier render of that frame wrote, as this machine's
    paths (``local``: the job's remap); [] when there is no usable record."""
    path = outputs_dir(layout, job_id) / f"{item_base}.json"
    try:
        entries = _parse(read_share_json(fs, path, "output record"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("output record %s not used: %s", path, exc)
        return []
    root = Path(os.path.abspath(layout.root))
    return [root.joinpath(*PurePosixPath(e.share).parts) if e.share is not None else local(e.path or "")
            for e in entries]


def _parse(data: object) -> list[RecordedFile]:
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or len(files) > MAX_FILES:
        raise ValueError(f"an output record must hold a list 'files' of at most {MAX_FILES} entries")
    out = []
    for entry in files:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError("each recorded file must be {\"share\": ...} or {\"path\": ...}")
        ((key, value),) = entry.items()
        if key not in ("share", "path") or not isinstance(value, str) or not value or len(value) > MAX_PATH:
            raise ValueError("each recorded file must be {\"share\": ...} or {\"path\": ...}")
        out.append(RecordedFile(share=value) if key == "share" else RecordedFile(path=value))
    return out
