"""The ``still`` task: one image of a scene file (a ``.pov`` that does not use the clock).

Submitted without ``--frames`` (envy/render/scene_range.py), the job has one
task file; the renderer runs its plain ``argv`` on the scene, as for one
per-frame file, and the image goes where it would for one: the job's output
folder, else ``<scene stem><output_ext>`` next to the scene (POV-Ray's own
default), rendered to a temp name first like every Envy output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envy.render.plans import PlanError, PlanInput, WorkPlan, _output_for
from envy.render.profiles import ProfileError


def plan_still_task(inp: PlanInput, task: Mapping[str, Any]) -> WorkPlan:
    profile = inp.profile()
    scene = inp.confined(inp.job.source, "scene")  # inside the share or a project root (envy/render/confine.py)
    stem = scene.name.split(".")[0]
    output = _output_for(inp, profile, stem, scene.parent)
    if output is not None:
        inp.make_output_folder(output.final.parent)
    try:
        argv = profile.command(
            executable=inp.executable(profile), scene=str(scene),
            output=str(output.temp) if output else None, threads=inp.threads(),
        )
    except ProfileError as exc:
        raise PlanError(str(exc)) from None
    return WorkPlan(argv, scene.parent, f"still {stem}", profile, [output] if output else [], [])
