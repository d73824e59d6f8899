"""Jobs whose paths leave the share and the project roots, against real agents (Must-hold 6).

A classmate who can write the share writes a job whose output (or source) is
somewhere else: ``..`` out of the project, a symlink in the share that points
out, an absolute path into another user's home. The agent refuses the item
with a one-line reason (in the attempt's log and the agent's log), writes
nothing there, and goes on rendering the jobs that stay inside.

The renderer is a stand-in (a Python one-liner that writes the image it is
given): these tests are about where Envy lets a job write, not about a renderer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from envy.agent.build import standard_planners
from envy.config import Config
from envy.render.claims import Claim, ItemName, ItemPattern, sort_listing
from envy.render.jobs import Job, new_job_id
from envy.render.plans import PlanInput, PlanRefused
from envy.render.profiles import load_profiles
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout, init_share
from farm import Farm, wait_for
from render_helpers import standin_profile, submit_folder

STAND_INS = Path(__file__).parent.parent / "stand_ins"
OK_RENDER = "import sys; open(sys.argv[-1], 'wb').write(b'img'); print('100%')"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Farm, Path, Path]]:
    """A farm whose one project root is ``projects/``, and another user's home beside it."""
    projects = tmp_path / "projects"
    victim = tmp_path / "home" / "other"
    (victim / "Documents").mkdir(parents=True)
    (victim / ".bashrc").write_text("# theirs\n")
    projects.mkdir()
    farm = Farm(tmp_path / "farm", settings={"project_roots": [str(projects)]})
    try:
        yield farm, projects, victim
    finally:
        farm.stop_all()


def frames(folder: Path, count: int = 1, stem: str = "shot") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):
        (folder / f"{stem}.{i:04d}.frame").write_text(json.dumps({"frame": i}))
    return folder


def listing(folder: Path) -> object:
    return sort_listing(os.listdir(folder), ItemPattern([".frame"]))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"") for p in sorted(folder.rglob("*"))}


def attempt_reasons(farm: Farm, job: Job) -> str:
    logs = job.logs_dir(farm.layout)
    return "".join(p.read_text(errors="replace") for p in logs.glob("*.log")) if logs.is_dir() else ""


def start(farm: Farm, profile: Path) -> None:
    agent = farm.start_agent("lab1-01", profiles=[str(profile)], max_retries=2)
    farm.wait_heartbeat(agent)
    farm.send("* render()")


def render_inside(farm: Farm, projects: Path, profile: Path) -> Path:
    """A job that stays inside the project root: it renders (the agent went on after the refusal)."""
    good = frames(projects / "good" / "frames", 1, "good")
    submit_folder(farm.share, good, renderer="standin", profiles=[profile], output=str(projects / "good" / "out"))
    out = projects / "good" / "out" / "good.0001.png"
    wait_for(out.exists, 60, "the job inside the project root to render")
    return out


def escape_by_dots(farm: Farm, projects: Path, victim: Path) -> str:
    return str(projects / "shot" / ".." / ".." / "home" / "other")


def escape_by_link(farm: Farm, projects: Path, victim: Path) -> str:
    (farm.share / "proj").mkdir()
    os.symlink(victim, farm.share / "proj" / "out")  # an innocent name in the share, pointing out
    return str(farm.share / "proj" / "out")


def escape_by_absolute_path(farm: Farm, projects: Path, victim: Path) -> str:
    return str(victim)


@pytest.mark.parametrize(("escape", "reason"), [
    (escape_by_dots, "climbs out with '..'"),
    (escape_by_link, "is a symlink to"),
    (escape_by_absolute_path, "is outside the allowed folders"),
])
def test_a_standin_job_whose_output_leaves_the_share_is_refused_and_nothing_is_written_there(
        lab: tuple[Farm, Path, Path], tmp_path: Path, escape, reason: str) -> None:  # type: ignore[no-untyped-def]
    farm, projects, victim = lab
    profile = standin_profile(tmp_path / "standin.yaml", "standin", OK_RENDER)
    before = snapshot(victim)
    shot = frames(projects / "shot" / "frames")
    job = submit_folder(farm.share, shot, renderer="standin", profiles=[profile],
                        output=escape(farm, projects, victim))
    start(farm, profile)
    # Refused once, for good: retrying cannot make the path any safer.
    wait_for(lambda: len(listing(shot).failed) == 1, 60, "the frame to be refused")
    assert listing(shot).failed[0].failures == 1
    assert reason in attempt_reasons(farm, job)
    assert "refused" in farm.log("lab1-01") and reason in farm.log("lab1-01")
    render_inside(farm, projects, profile)
    assert snapshot(victim) == before, "the agent wrote outside the share and the project roots"


def test_a_standin_job_whose_source_is_another_users_folder_is_never_claimed(
        lab: tuple[Farm, Path, Path], tmp_path: Path) -> None:
    farm, projects, victim = lab
    profile = standin_profile(tmp_path / "standin.yaml", "standin", OK_RENDER)
    docs = frames(victim / "Documents", 2, "thesis")
    before = snapshot(victim)
    submit_folder(farm.share, docs, renderer="standin", profiles=[profile], priority=100)
    start(farm, profile)
    wait_for(lambda: "refused: job source" in farm.log("lab1-01"), 60, "the job to be refused in the agent log")
    # The higher-priority refused job does not stop the others; and once that one is done,
    # the agent has looked at the refused job many times: its files were never renamed.
    render_inside(farm, projects, profile)
    assert snapshot(victim) == before, "the agent renamed or wrote another user's files"
    assert farm.log("lab1-01").count("refused: job source") == 1, "the refusal is one line, not one per poll"


def test_a_standin_job_inside_the_project_roots_renders(lab: tuple[Farm, Path, Path], tmp_path: Path) -> None:
    farm, projects, _ = lab
    profile = standin_profile(tmp_path / "standin.yaml", "standin", OK_RENDER)
    start(farm, profile)
    assert render_inside(farm, projects, profile).read_bytes() == b"img"


# -- husk and hython tasks: planned against real folders (husk and hython are stand-ins here) -----

def task_input(tmp_path: Path, task: dict, kind: str, share_name: str = "share") -> PlanInput:
    share = tmp_path / share_name
    init_share(share, "student", fs=REAL_FS)
    job = Job(id=new_job_id(kind), name=kind, kind="tasks", renderer=kind, source=str(tmp_path / "projects"),
              extensions=[".json"])
    tasks = job.tasks_dir(ShareLayout(share))
    tasks.mkdir(parents=True)
    (tasks / "t.0001.json").write_text(json.dumps(task))
    config = Config(renderers={"husk": {"executable": str(STAND_INS / "husk")},
                               "hython": {"executable": str(STAND_INS / "hython")}},
                    project_roots=(str(tmp_path / "projects"),))
    claim = Claim(tasks, ItemName("t.0001", ".json", "pending"))
    return PlanInput(job, claim, load_profiles(), config, "n0nce", share / "jobs" / job.id, REAL_FS, share)


def husk_task(usd: Path, output: str, *extra: str) -> dict:
    argv = ["husk", "--renderer", "BRAY_HdKarma", "--settings", "/Render/rendersettings", "--frame", "1",
            "--output", output, *extra, str(usd)]
    return {"type": "husk", "argv": argv, "usd": str(usd), "frame": 1, "delegate": "BRAY_HdKarma",
            "output": output}


@pytest.mark.parametrize(("where", "extra", "reason"), [
    ("home/other/.bashrc", (), "outside the allowed folders"),
    ("projects/out/f.exr", ("--prerender-script", "/tmp/x.py"), "runs a script"),
    ("projects/out/f.exr", ("--snapshot-path", "/etc/cron.d/x"), "outside the allowed folders"),
    ("projects/out/f.exr", ("--snapshot-path", "../../home/other/.bashrc"), "climbs out"),
])
def test_a_husk_task_leading_out_is_refused_before_anything_is_made(
        tmp_path: Path, where: str, extra: tuple[str, ...], reason: str) -> None:
    usd = tmp_path / "projects" / "shot.usda"
    usd.parent.mkdir(parents=True)
    usd.write_text("#usda 1.0\n")
    (tmp_path / "home" / "other").mkdir(parents=True)
    inp = task_input(tmp_path, husk_task(usd, str(tmp_path / where), *extra), "husk")
    with pytest.raises(PlanRefused, match=reason):
        standard_planners().plan(inp)
    assert not (tmp_path / "projects" / "out").exists(), "the output folder was made before the refusal"
    assert list((tmp_path / "home" / "other").iterdir()) == []


def test_a_husk_task_inside_the_project_root_is_planned(tmp_path: Path) -> None:
    usd = tmp_path / "projects" / "shot.usda"
    usd.parent.mkdir(parents=True)
    usd.write_text("#usda 1.0\n")
    plan = standard_planners().plan(task_input(tmp_path, husk_task(usd, str(tmp_path / "projects" / "o.exr")), "husk"))
    assert plan.outputs[0].final == tmp_path / "projects" / "o.exr"


def test_a_hython_task_whose_hip_or_output_parameter_leads_out_is_refused(tmp_path: Path) -> None:
    hip = tmp_path / "projects" / "shot.hip"
    hip.parent.mkdir(parents=True)
    hip.write_bytes(b"HIP")
    outside = {"type": "hython", "hip": str(hip), "node": "/obj/geo/cache", "button": "execute",
               "parms": {"sopoutput": str(tmp_path / "home" / "other" / ".bashrc")}}
    with pytest.raises(PlanRefused, match="parameter sopoutput"):
        standard_planners().plan(task_input(tmp_path, outside, "hython"))
    inside = {**outside, "parms": {"sopoutput": "$HIP/geo/$OS.$F4.bgeo.sc"}}
    assert standard_planners().plan(task_input(tmp_path, inside, "hython", "share2")).argv
