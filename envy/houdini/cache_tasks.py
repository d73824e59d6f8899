"""How an agent runs one cache task: ``hython runner.py <task file>``.

The runner ships in this package (runner.py) and needs only Houdini's own
Python. The task file is passed by its claimed name, so the runner reads
exactly what this agent claimed; the file itself is never changed or
deleted (a crash leaves it claimed, and another agent takes it over after
the dead timeout; a failure after the retry limit leaves it as
``cache.0001.envy~failed~...json``).

Paths in the task are the submitter's. When this agent's path remap changes
the HIP file or a parameter value that starts with a remapped folder, the
local values travel as JSON in ``--local`` (data in argv, never code).

The ``hython`` profile is built here rather than in builtin_profiles/; a
user profile named ``hython`` (YAML) replaces it, and
``renderers: {hython: {executable: ...}}`` in config points at a hython.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envy.render.plans import PlanError, PlanInput, WorkPlan
from envy.render.profiles import RendererProfile
from envy.render.remap import PathRemap

RUNNER = Path(__file__).with_name("runner.py")

# The runner's documented progress line, and a ROP's own Alfred-style progress
# (its "alfprogress" toggle) while the cache cooks.
PROGRESS_PATTERNS = (
    r"^ENVY_PROGRESS\s+(?P<pct>\d+(?:\.\d+)?)%",
    r"ALF_PROGRESS\s+(?P<pct>\d+(?:\.\d+)?)%",
)
ERROR_PATTERNS = (r"^ENVY_ERROR ", r"No licenses could be found")

HYTHON_PROFILE = RendererProfile(
    name="hython",
    description="Houdini's hython running Envy's cache runner (envy/houdini/runner.py) on a cache task.",
    extensions=(".json",),
    executables={
        "windows": ("C:/Program Files/Side Effects Software/Houdini */bin/hython.exe", "hython.exe"),
        "darwin": (
            "/Applications/Houdini/Houdini*/Frameworks/Houdini.framework/Versions/Current/Resources/bin/hython",
            "hython",
        ),
        "linux": ("/opt/hfs*/bin/hython", "hython"),
    },
    argv=("{scene}",),
    progress=PROGRESS_PATTERNS,
    errors=ERROR_PATTERNS,
    ok_exit_codes=(0,),
    output_ext=".json",
    source="envy/houdini/cache_tasks.py",
)


def runner_path() -> Path:
    return RUNNER


def hython_profile(profiles: Mapping[str, RendererProfile]) -> RendererProfile:
    """A user's ``hython`` profile when there is one, else the built-in one above."""
    return profiles.get("hython") or HYTHON_PROFILE


def plan_cache_task(inp: PlanInput, task: Mapping[str, Any]) -> WorkPlan:
    for key in ("hip", "node", "button"):
        if not isinstance(task.get(key), str) or not task[key]:
            raise PlanError(f"cache task needs '{key}' as text")
    if not isinstance(task.get("parms"), dict):
        raise PlanError("cache task needs 'parms' as an object")
    profile = hython_profile(inp.profiles)
    hip = inp.confined(task["hip"], "HIP file")
    for name, value in task["parms"].items():
        # Parameter values that are absolute paths (after the remap) are where the cache goes.
        if isinstance(value, str) and "$" not in value and Path(inp.remap().apply(value)).is_absolute():
            inp.confined(value, f"parameter {name}")
    if not inp.is_file(hip):
        raise PlanError(
            f"HIP file not found here: {hip} (from {task['hip']}; is the share mounted, is a remap rule missing?)"
        )
    argv = [inp.executable(profile), str(runner_path()), str(inp.claim.path)]
    local = local_values(inp.remap(), task, str(hip))
    if local:
        argv += ["--local", json.dumps(local, sort_keys=True)]
    number, count = task.get("job_number"), task.get("job_count")
    label = (
        f"{task.get('name') or 'cache'} job {number}/{count}" if number and count else f"{task.get('name') or 'cache'}"
    )
    return WorkPlan(argv, hip.parent, label, profile, [], [])


def local_values(remap: PathRemap, task: Mapping[str, Any], local_hip: str) -> dict[str, Any]:
    """The HIP file and the text parameters that this machine sees under other paths."""
    local: dict[str, Any] = {}
    if local_hip != task["hip"]:
        local["hip"] = local_hip
    parms = {
        name: remap.apply(value)
        for name, value in task["parms"].items()
        if isinstance(value, str) and matches_rule(remap, value)
    }
    parms = {name: value for name, value in parms.items() if value != task["parms"][name]}
    if parms:
        local["parms"] = parms
    return local


def matches_rule(remap: PathRemap, value: str) -> bool:
    """Whether a remap rule applies to ``value`` (only those values are paths we may rewrite)."""
    unified = value.replace("\\", "/").casefold()
    for source, _ in remap.rules:
        prefix = source.replace("\\", "/").rstrip("/").casefold()
        if prefix and unified.startswith(prefix) and (len(unified) == len(prefix) or unified[len(prefix)] == "/"):
            return True
    return False
