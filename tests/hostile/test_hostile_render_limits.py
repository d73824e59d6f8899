"""Render timeouts and stall limits (Must-hold 8), with stand-in renderers and real agents.

The renderers here are stand-ins (Python one-liners that hang, or print
progress for ever, and one that leaves a grandchild running): these tests are
about how long Envy lets a render run, not about a renderer.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from envy.agent.processes import ProcessHandler
from envy.config import Config
from envy.render.claims import ItemPattern, sort_listing
from envy.render.jobs import Job, new_job_id
from envy.render.limits import RenderLimits, render_limits
from farm import Farm, wait_for
from render_helpers import standin_profile, submit_folder

SILENT = "import time; time.sleep(600)"
CHATTY = "import itertools, time; [print('5%', flush=True) or time.sleep(0.2) for _ in itertools.count()]"
# Leaves a grandchild that also hangs, and says where it is: the whole tree must go.
WITH_GRANDCHILD = (
    "import os, subprocess, sys, time; "
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "open(os.path.join(os.path.dirname(sys.argv[1]), 'grandchild.pid'), 'w').write(str(p.pid)); "
    "time.sleep(600)"
)


def job(timeout: int | None = None, stall: int | None = None) -> Job:
    return Job(id=new_job_id("j"), name="j", kind="frames", renderer="x", source="/p", extensions=[".frame"],
               timeout=timeout, stall=stall)


def test_a_jobs_limits_replace_the_farms_but_never_pass_its_maximum() -> None:
    farm = Config(render_timeout=600, render_stall=60)
    assert render_limits(job(), farm) == RenderLimits(600, 60)
    assert render_limits(job(timeout=30, stall=5), farm) == RenderLimits(30, 5)
    assert render_limits(job(timeout=0), farm) == RenderLimits(0, 60)  # no maximum: a job may switch it off
    capped = Config(render_timeout=600, render_timeout_max=3600, render_stall_max=300)
    assert render_limits(job(timeout=10**6, stall=10**6), capped) == RenderLimits(3600, 300)
    assert render_limits(job(timeout=0, stall=0), capped) == RenderLimits(3600, 300)  # "none" is the maximum
    assert render_limits(job(), Config()) == RenderLimits(0, 0)  # off by default: renders can be long


def test_a_hostile_job_file_cannot_ask_for_a_negative_or_huge_limit() -> None:
    for value in (-1, 10**9, "600", True):
        data = {**job().to_json(), "timeout": value}
        with pytest.raises(ValueError):
            Job.from_json(data)


# -- the process handler kills the tree --------------------------------------------------------

@pytest.fixture
def handler(tmp_path: Path) -> Iterator[ProcessHandler]:
    with ProcessHandler(tmp_path / "state", tie_to_agent=False) as h:
        yield h


def test_a_standin_that_prints_nothing_is_killed_with_its_grandchild(handler: ProcessHandler, tmp_path: Path) -> None:
    scene = tmp_path / "scene.frame"
    scene.write_text("{}")
    child = handler.start("silent", [sys.executable, "-c", WITH_GRANDCHILD, str(scene)], tmp_path / "s.log",
                          stall_s=1.5)
    pid_file = tmp_path / "grandchild.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30, "the grandchild to start")
    result = child.wait(60)
    assert result is not None and result.killed_reason == "no output for 1.5 s"
    grandchild = int(pid_file.read_text())
    wait_for(lambda: not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE,
             10, "the grandchild to be gone too")


def test_a_standin_printing_progress_for_ever_times_out(handler: ProcessHandler, tmp_path: Path) -> None:
    child = handler.start("chatty", [sys.executable, "-c", CHATTY], tmp_path / "c.log", timeout_s=2, stall_s=1)
    result = child.wait(60)
    assert result is not None and result.killed_reason == "timed out after 2 s"  # output kept the stall away
    assert "5%" in (tmp_path / "c.log").read_text()


# -- real agents: the frame fails with the reason and is retried per the retry policy -------------

def frames(folder: Path, count: int = 1) -> Path:
    folder.mkdir(parents=True)
    for i in range(1, count + 1):
        (folder / f"shot.{i:04d}.frame").write_text(json.dumps({"frame": i}))
    return folder


def attempts(farm: Farm, job: Job) -> str:
    logs = job.logs_dir(farm.layout)
    return "".join(p.read_text(errors="replace") for p in sorted(logs.glob("*.log"))) if logs.is_dir() else ""


def failed_for_good(folder: Path) -> list:
    return sort_listing(os.listdir(folder), ItemPattern([".frame"])).failed


@pytest.mark.parametrize(("code", "asked", "farm_settings", "reason"), [
    (SILENT, {"stall": 2}, {}, "no output for 2 s"),
    (CHATTY, {"timeout": 3}, {}, "timed out after 3 s"),
    # A hostile job asks for a day; the farm's maximum wins.
    (CHATTY, {"timeout": 86_400}, {"render_timeout_max": 3}, "timed out after 3 s"),
    # A job that asks for nothing gets the farm's default.
    (SILENT, {}, {"render_stall": 2}, "no output for 2 s"),
])
def test_a_standin_render_past_its_limit_is_killed_failed_with_the_reason_and_retried(
        farm: Farm, tmp_path: Path, code: str, asked: dict, farm_settings: dict, reason: str) -> None:
    profile = standin_profile(tmp_path / "standin.yaml", "standin", code)
    shot = frames(tmp_path / "shot" / "frames")
    job = submit_folder(farm.share, shot, renderer="standin", profiles=[profile], max_retries=1, **asked)
    agent = farm.start_agent("lab1-01", profiles=[str(profile)], **farm_settings)
    farm.wait_heartbeat(agent)
    farm.send("* render()")
    wait_for(lambda: failed_for_good(shot), 90, "the frame to fail after its retry")
    assert failed_for_good(shot)[0].failures == 2, "tried once, retried once (max_retries 1)"
    assert attempts(farm, job).count(f"ENVY FAILED: {reason}") == 2
    assert f"failed ({reason}); it will be retried" in farm.log("lab1-01")
