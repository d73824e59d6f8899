"""How to run one claimed item: the argv, the folder, and the outputs to check.

Per-frame scene files run their renderer profile on the claimed file itself.
Task files (JSON) say what to run; each task ``type`` has a planner in a
``Planners`` registry. This module defines the registry and the ``frames``
and ``range`` planners; the module that builds the agent
(envy/agent/build.py) registers them together with ``husk`` (envy/usd) and
``hython`` (envy/houdini): render/ knows no task type of its own accord.
Every share access goes through ``PlanInput.fs``.

Outputs are rendered to a temp name that carries our nonce and are moved
into place only after the ownership check, so an agent that lost its claim
(paused past the dead timeout) never overwrites the new owner's image.
"""

from __future__ import annotations

import os
import re
import stat as stat_mod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

from envy.config import Config
from envy.platform.host import os_name
from envy.render.claims import Claim, frame_number, is_within
from envy.render.confine import Confinement, PathRefused, RangeRefused, check_frame_range
from envy.render.jobs import Job
from envy.render.profiles import ProfileError, RendererProfile
from envy.render.remap import PathRemap
from envy.render.scene_range import frame_step, own_format, own_frame_files
from envy.share.bounded import read_share_json
from envy.share.fs import ShareFS
from envy.share.output_folders import make_output_folder


class PlanError(ValueError):
    """The item cannot be run here (missing renderer, bad task file): fails the item with this reason."""


class PlanRefused(PlanError):
    """A path the job names leads outside the share and the project roots: failed for good, never retried."""


@dataclass
class Output:
    temp: Path | None  # where the renderer writes; None when it writes the final name itself
    final: Path

    def written(self, fs: ShareFS) -> Path | None:
        """The file the renderer wrote, if it is there and not empty.

        Renderers that number frames themselves pad differently (POV-Ray pads
        to the width of the last frame number, Blender to 4), so a range
        output named ``stem_0007.png`` is also found as ``stem_07.png``.
        """
        candidates = [self.temp] if self.temp is not None else [self.final, *self._padding_variants()]
        for path in candidates:
            try:
                if fs.stat(path).st_size > 0:
                    return path
            except OSError:
                continue
        return None

    def _padding_variants(self) -> list[Path]:
        m = re.match(r"^(?P<stem>.*_)(?P<num>\d+)(?P<ext>\.[^.]+)$", self.final.name)
        if not m:
            return []
        n = int(m["num"])
        return [self.final.with_name(f"{m['stem']}{n:0{w}d}{m['ext']}") for w in range(1, 9)]


@dataclass
class WorkPlan:
    argv: list[str]
    cwd: Path
    label: str
    profile: RendererProfile | None
    outputs: list[Output] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)


@dataclass
class PlanInput:
    job: Job
    claim: Claim
    profiles: Mapping[str, RendererProfile]
    config: Config
    nonce: str
    job_dir: Path  # the job's folder on the share (jobs/<id>)
    fs: ShareFS  # the share, as the agent reaches it (the seam a test injects faults through)
    share_root: Path | None = None  # the Envy folder; None: the folder above jobs/

    def confinement(self) -> Confinement:
        """Where this job's paths may lead (envy/render/confine.py): the share and the farm's project roots."""
        share = self.share_root if self.share_root is not None else self.job_dir.parent.parent
        return Confinement.for_job(self.job_dir, self.config.project_roots, share)

    def confined(self, path: str, what: str) -> Path:
        """A path the job names (the submitter's), as this machine sees it, once it is known to stay inside.

        A relative path is taken from the job's folder."""
        local = self.local_path(path)
        if not local.is_absolute() and not PureWindowsPath(local).drive:
            local = self.job_dir / local
        return self.confined_local(local, what)

    def confined_local(self, path: Path, what: str, *, output: bool = False) -> Path:
        """``path`` (already this machine's; relative: to the working folder, like a relative --share)
        when it is inside; ``output``: also never a link or folder."""
        if not path.is_absolute() and not PureWindowsPath(path).drive:
            path = Path(os.path.abspath(path))
        confinement = self.confinement()
        try:
            return confinement.check_output(path, what) if output else confinement.check(path, what)
        except PathRefused as exc:
            raise PlanRefused(str(exc)) from None

    def make_output_folder(self, path: Path) -> None:
        """Create a (confined) output folder; ShareAway when the share or project drive is not there."""
        confinement = self.confinement()
        make_output_folder(path, confinement.roots, confinement.share_root, self.fs)

    def is_file(self, path: Path) -> bool:
        try:
            return stat_mod.S_ISREG(self.fs.stat(path).st_mode)
        except OSError:
            return False

    def remap(self) -> PathRemap:
        return PathRemap.parse([*self.config.remap, *self.job.remap])

    def local_path(self, path: str) -> Path:
        return Path(self.remap().apply(path, os_name()))

    def remap_text(self, path: str) -> str:
        """``path`` for this machine, as text (a trailing separator kept)."""
        return self.remap().apply(path, os_name())

    def profile(self, name: str | None = None) -> RendererProfile:
        key = (name or self.job.renderer).lower()
        if key not in self.profiles:
            raise PlanError(f"renderer '{key}' is not known here (known: {', '.join(sorted(self.profiles))})")
        return self.profiles[key]

    def executable(self, profile: RendererProfile) -> str:
        exe = profile.find_executable(self.config.renderers)
        if exe is None and not self.config.renderers.get(profile.name):
            exe = _next_to_python(profile)
        if exe is None:
            raise PlanError(
                f"renderer '{profile.name}' executable not found on this machine; "
                f"set renderers.{profile.name}.executable in config"
            )
        return exe

    def threads(self) -> int | None:
        return self.config.threads or None


def _next_to_python(profile: RendererProfile) -> str | None:
    """A renderer installed into Envy's own environment (a venv not on PATH)."""
    import os
    import sys

    folder = Path(sys.executable).parent
    for name in profile.executables.get(os_name(), ()):
        candidate = folder / Path(name).name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _output_for(inp: PlanInput, profile: RendererProfile, base: str, scene_dir: Path) -> Output | None:
    if inp.job.output:
        out_dir = inp.confined(inp.job.output, "output folder")
    elif profile.output_next_to_scene and profile.output_arg:
        out_dir = scene_dir  # <scene stem>.png next to the scene (POV-Ray's own default too)
    else:
        return None  # the scene file decides where the image goes
    final = inp.confined_local(out_dir / f"{base}{profile.output_ext}", "output", output=True)
    temp = inp.confined_local(out_dir / f"{base}.envy~tmp~{inp.nonce}{profile.output_ext}", "output", output=True)
    return Output(temp, final)


def plan_frame_file(inp: PlanInput) -> WorkPlan:
    """A per-frame scene file: render the claimed file itself (same folder, same extension)."""
    profile = inp.profile()
    scene = inp.confined_local(inp.claim.path, "scene")  # the folder was checked before claiming; links inside it
    base = inp.claim.item.base
    output = _output_for(inp, profile, base, scene.parent)
    if output is not None:
        inp.make_output_folder(output.final.parent)
    frame = frame_number(base)
    try:
        argv = profile.command(
            executable=inp.executable(profile), scene=str(scene),
            output=str(output.temp) if output else None, threads=inp.threads(),
            frame=frame if "{frame}" in " ".join(profile.argv) else None,
        )
    except ProfileError as exc:
        raise PlanError(str(exc)) from None
    return WorkPlan(
        argv, scene.parent, f"{base}", profile, [output] if output else [], [frame] if frame is not None else []
    )


def read_task(inp: PlanInput) -> dict[str, Any]:
    try:
        # Bounded, regular, nesting-capped (Must-hold 5): a task file is written by whoever can write the share.
        data = read_share_json(inp.fs, inp.claim.path, "task")
    except (OSError, ValueError) as exc:  # ShareFileError is a ValueError
        raise PlanError(f"task file unreadable: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise PlanError("task file must be a JSON object with a 'type'")
    return data


def plan_range_task(inp: PlanInput, task: Mapping[str, Any]) -> WorkPlan:
    """A chunk of a frame-range job (``.blend``, animated ``.pov``): one renderer run for frames start..end."""
    profile = inp.profile()
    try:
        start, end = check_frame_range(task.get("start"), task.get("end"))  # 200 million frames: refused
    except RangeRefused as exc:
        raise PlanError(str(exc)) from None
    scene = inp.confined(inp.job.source, "scene")
    try:
        frames = list(range(start, end + 1, frame_step(task)))
        # The scene's own output path and format, recorded at submit, win when the job sets no output.
        own = None if inp.job.output else own_frame_files(inp.job.settings, frames, scene.parent, inp.remap_text)
        kept = own_format(inp.job.settings) if inp.job.output else None  # --output: the folder, not the format
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    out_dir = inp.confined(inp.job.output, "output folder") if inp.job.output else scene.parent
    stem = scene.name.split(".")[0]
    if own is None:
        inp.make_output_folder(out_dir)
    try:
        argv = profile.command(
            executable=inp.executable(profile), scene=str(scene),
            output=str(out_dir / f"{stem}_") if own is None else None, threads=inp.threads(), start=start, end=end,
            output_format=kept[0] if kept else None,
        )
    except ProfileError as exc:
        raise PlanError(str(exc)) from None
    ext = kept[1] if kept else profile.output_ext
    files = own if own is not None else [out_dir / f"{stem}_{f:04d}{ext}" for f in frames]
    # The scene's own output path is the job's too (a share writer can set it): confined like --output.
    outputs = [Output(None, inp.confined_local(path, "output", output=True)) for path in files]
    return WorkPlan(argv, scene.parent, f"frames {start}-{end}", profile, outputs, frames)


FramePlanner = Callable[[PlanInput], WorkPlan]
TaskPlanner = Callable[[PlanInput, Mapping[str, Any]], WorkPlan]


class Planners:
    """The registry of task types: who makes the WorkPlan for a claimed item.

    Ownership: filled once by the module that builds the agent, before any
    render thread starts; only read afterwards (by the render workers).
    """

    def __init__(self) -> None:
        self._frames: FramePlanner | None = None
        self._tasks: dict[str, TaskPlanner] = {}

    def register_frames(self, planner: FramePlanner) -> None:
        """The planner for per-frame scene files (jobs of kind ``frames``)."""
        self._frames = planner

    def register_task(self, task_type: str, planner: TaskPlanner) -> None:
        """The planner for task files whose ``type`` is ``task_type``."""
        self._tasks[task_type] = planner

    def task_types(self) -> list[str]:
        return sorted(self._tasks)

    def plan(self, inp: PlanInput) -> WorkPlan:
        if inp.job.kind == "frames":
            if self._frames is None:
                raise PlanError("per-frame scene files cannot be rendered here (no frames planner)")
            return self._frames(inp)
        task = read_task(inp)
        planner = self._tasks.get(task["type"])
        if planner is None:
            raise PlanError(f"unknown task type {task['type']!r} (known: {', '.join(self.task_types())})")
        return planner(inp, task)


def check_task_path(inp: PlanInput, value: str) -> Path:
    """A path named in a task file must stay inside the job's folder (no ``..``, no absolute elsewhere)."""
    if re.search(r"(^|[\\/])\.\.([\\/]|$)", value):
        raise PlanError(f"task path {value!r} leaves the job folder ('..' is not allowed)")
    path = Path(value)
    if not path.is_absolute():
        path = inp.job_dir / path
    if not is_within(path, inp.job_dir):
        raise PlanError(f"task path {value!r} is outside the job folder {inp.job_dir}")
    return path
