"""Submitting a USD folder as husk tasks, and planning one task on an agent.

The husk command lines are checked against husk's documented options; they
run against a stand-in husk in test_usd_husk_contract.py (contract tests, not
end-to-end renders: Houdini is not installed here).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pxr", reason="usd-core (the 'test' extra) writes the USD files of these tests")

from envy.agent.build import standard_planners  # noqa: E402
from envy.config import Config  # noqa: E402
from envy.render.claims import Claim, ItemName  # noqa: E402
from envy.render.jobs import JobError, list_jobs  # noqa: E402
from envy.render.plans import PlanError, PlanInput  # noqa: E402
from envy.render.profiles import load_profiles  # noqa: E402
from envy.share.fs import REAL_FS  # noqa: E402
from envy.share.layout import ShareLayout, init_share  # noqa: E402
from envy.usd.check import UsdCheckError  # noqa: E402
from envy.usd.cli_submit import run_submit_usd  # noqa: E402
from envy.usd.submit_usd import parse_tiles, submit_usd, tile_file_name  # noqa: E402
from test_usd_check import write_shot  # noqa: E402

STAND_INS = Path(__file__).parent / "stand_ins"


@pytest.fixture
def layout(tmp_path: Path) -> ShareLayout:
    init_share(tmp_path / "share", "student", fs=REAL_FS)
    return ShareLayout(tmp_path / "share")


def usd_folder(root: Path, frames: range = range(1, 4)) -> Path:
    folder = root / "usd"
    folder.mkdir()
    for f in frames:
        write_shot(folder / f"shot.{f:04d}.usda", f)
    return folder


def tasks_of(layout: ShareLayout, job_id: str) -> dict[str, dict]:
    folder = layout.jobs_dir / job_id / "tasks"
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.iterdir())}


def test_one_husk_task_per_frame_with_argv_as_a_list(tmp_path: Path, layout: ShareLayout) -> None:
    folder = usd_folder(tmp_path)
    job = submit_usd(layout, str(folder), "HdStormRendererPlugin", priority=70, fs=REAL_FS)
    assert (job.kind, job.renderer, job.priority, job.frames, job.output) == (
        "tasks", "husk", 70, "1-3", f"{folder}/render")
    tasks = tasks_of(layout, job.id)
    assert list(tasks) == ["shot.0001.json", "shot.0002.json", "shot.0003.json"]
    task = tasks["shot.0002.json"]
    usd, out = f"{folder}/shot.0002.usda", f"{folder}/render/shot.0002.exr"
    assert task["argv"] == ["husk", "--renderer", "HdStormRendererPlugin", "--settings", "/rendersettings",
                            "--frame", "2", "--frame-count", "1", "--verbose", "a2",
                            "--make-output-path", "--output", out, usd]
    assert (task["type"], task["delegate"], task["frame"], task["tile"], task["output"], task["usd"]) == (
        "husk", "HdStormRendererPlugin", 2, None, out, usd)
    jobs, _ = list_jobs(layout, fs=REAL_FS)
    assert [j.id for j in jobs] == [job.id]


def test_tiles_make_one_task_per_frame_and_tile(tmp_path: Path, layout: ShareLayout) -> None:
    folder = usd_folder(tmp_path, range(1, 3))
    job = submit_usd(layout, str(folder), tiles=parse_tiles("3x2"), output=str(tmp_path / "images"), fs=REAL_FS)
    tasks = tasks_of(layout, job.id)
    assert len(tasks) == 2 * 6
    task = tasks["shot.0002.tile04.json"]
    assert task["tile"] == {"count": [3, 2], "index": 4, "suffix": "_tile%02d"}
    argv = task["argv"]
    assert argv[argv.index("--tile-count") + 1: argv.index("--tile-count") + 3] == ["3", "2"]
    assert argv[argv.index("--tile-index") + 1] == "4" and argv[argv.index("--tile-suffix") + 1] == "_tile%02d"
    assert argv[argv.index("--output") + 1] == str(tmp_path / "images" / "shot.0002.exr")
    assert tile_file_name("shot.0002.exr", "_tile%02d", 4) == "shot.0002_tile04.exr"


def test_bad_input_writes_nothing(tmp_path: Path, layout: ShareLayout) -> None:
    folder = usd_folder(tmp_path)
    write_shot(folder / "shot.0009.usda", 9, settings=None)
    with pytest.raises(UsdCheckError, match="shot.0009.usda: no /rendersettings prim"):
        submit_usd(layout, str(folder), fs=REAL_FS)
    (tmp_path / "good").mkdir()
    good = usd_folder(tmp_path / "good")
    for bad, message in (
        (dict(delegate="Karma; rm -rf /"), "Hydra delegate name"),
        (dict(tiles=(0, 3)), "tiles must be"),
        (dict(priority=101), "priority"),
        (dict(tile_suffix="_%s"), "one %d"),
    ):
        with pytest.raises(JobError, match=message):
            submit_usd(layout, str(good), fs=REAL_FS, **bad)  # type: ignore[arg-type]
    with pytest.raises(JobError, match="COLUMNSxROWS"):
        parse_tiles("3 by 3")
    assert list(layout.jobs_dir.iterdir()) == []


def test_cli_function_prints_one_line_and_submits(tmp_path: Path, layout: ShareLayout) -> None:
    folder = usd_folder(tmp_path)
    said: list[str] = []
    assert run_submit_usd(layout.root, str(folder), "BRAY_HdKarmaXPU", "2x2", say=said.append, fs=REAL_FS) == 0
    assert len(said) == 1 and "3 frames (1-3), 2x2 tiles each with BRAY_HdKarmaXPU" in said[0]


def plan_input(layout: ShareLayout, job_id: str, task_name: str, **config: object) -> PlanInput:
    jobs, _ = list_jobs(layout, fs=REAL_FS)
    job = next(j for j in jobs if j.id == job_id)
    base, ext = task_name[: -len(".json")], ".json"
    claim = Claim(job.tasks_dir(layout), ItemName(base, ext, "pending"))
    # The test's USD files are beside the share: a project root (envy/render/confine.py).
    config.setdefault("project_roots", (str(layout.root.parent),))
    cfg = Config(renderers={"husk": {"executable": str(STAND_INS / "husk")}}, **config)  # type: ignore[arg-type]
    return PlanInput(job, claim, load_profiles(), cfg, "n0nce", layout.jobs_dir / job.id, REAL_FS)


def test_plan_uses_this_agents_husk_and_paths_and_a_temp_output(tmp_path: Path, layout: ShareLayout) -> None:
    folder = usd_folder(tmp_path)
    # Submitted from a Windows machine: Z:/proj/usd is this test's folder under the remap rule.
    rule = f"Z:/proj,{tmp_path}"
    job = submit_usd(
        layout, "Z:/proj/usd", tiles=(2, 2), output="Z:/proj/images", remap=[rule], local_os="linux", fs=REAL_FS
    )
    task = tasks_of(layout, job.id)["shot.0003.tile01.json"]
    assert task["usd"] == "Z:/proj/usd/shot.0003.usda"  # stored as the submitter wrote it
    plan = standard_planners().plan(plan_input(layout, job.id, "shot.0003.tile01.json", threads=4))
    assert plan.argv[0] == str(STAND_INS / "husk")
    assert plan.argv[-1] == str(folder / "shot.0003.usda")
    assert plan.argv[-3:-1] == ["--threads", "4"]
    temp = tmp_path / "images" / "shot.0003.envy~tmp~n0nce.exr"
    assert plan.argv[plan.argv.index("--output") + 1] == str(temp)
    assert [(o.temp, o.final) for o in plan.outputs] == [
        (tmp_path / "images" / "shot.0003.envy~tmp~n0nce_tile01.exr", tmp_path / "images" / "shot.0003_tile01.exr")]
    assert plan.frames == [3] and plan.cwd == folder and plan.profile is not None and plan.profile.name == "husk"


def test_plan_refuses_a_tampered_task(tmp_path: Path, layout: ShareLayout) -> None:
    folder = usd_folder(tmp_path, range(1, 2))
    job = submit_usd(layout, str(folder), fs=REAL_FS)
    path = layout.jobs_dir / job.id / "tasks" / "shot.0001.json"
    task = json.loads(path.read_text())
    task["argv"][-1] = "/etc/other.usd"
    path.write_text(json.dumps(task))
    with pytest.raises(PlanError, match="last argv item"):
        standard_planners().plan(plan_input(layout, job.id, "shot.0001.json"))


def test_envy_io_submit_with_delegate_and_tiles_takes_the_husk_path(tmp_path: Path) -> None:
    import contextlib
    import io

    from envy_io.cli import main

    init_share(tmp_path / "share", "student", fs=REAL_FS)
    layout = ShareLayout(tmp_path / "share")
    folder = usd_folder(tmp_path, range(1, 3))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--share", str(layout.root), "submit", str(folder), "--delegate", "BRAY_HdKarmaXPU",
                     "--tiles", "3x3", "--priority", "80"])
    assert code == 0, err.getvalue()
    jobs, _ = list_jobs(layout, fs=REAL_FS)
    assert len(jobs) == 1 and (jobs[0].renderer, jobs[0].priority) == ("husk", 80)
    tasks = tasks_of(layout, jobs[0].id)
    assert len(tasks) == 2 * 9 and all(t["delegate"] == "BRAY_HdKarmaXPU" for t in tasks.values())
