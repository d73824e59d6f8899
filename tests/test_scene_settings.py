"""Renderers' own settings win (issue 11 Must-hold 4), with real Blender and real POV-Ray.

A .blend's frame range, step, output path and image format are asked of Blender
at submit and kept; ``--frames`` / ``--output`` override them; a still .pov needs
no ``--frames``. The .blend files are made by Blender itself in the test (tiny,
Workbench), once per module, to keep each test a few seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool
from envy.config import Config
from envy.render.blend_scene import BlendSceneError, ask_blender, frame_file
from envy.render.claims import Claim, ItemName
from envy.render.jobs import Job, JobError
from envy.render.plans import PlanError, PlanInput, WorkPlan, plan_range_task
from envy.render.profiles import load_profiles
from envy.render.scene_range import scene_frames
from envy.render.submit import write_range_tasks
from envy.share.fs import REAL_FS
from envy.share.layout import ShareLayout
from envy_io.cli import main
from farm import Farm, wait_for
from render_helpers import is_png

MAKE_BLENDS = r"""
import bpy, json, sys
out = sys.argv[-1]
s = bpy.context.scene
r = s.render
s.frame_start, s.frame_end, s.frame_step = 3, 7, 2
r.engine = 'BLENDER_WORKBENCH'
s.display.render_aa = 'OFF'
r.resolution_x, r.resolution_y, r.resolution_percentage = 32, 24, 100
r.filepath = '//renders/shot_##'
r.image_settings.file_format = 'JPEG'
bpy.ops.wm.save_as_mainfile(filepath=out + '/scene.blend', copy=True)
# Blender's own answers for the naming rules Envy follows (compared in a test below).
samples = []
for fmt in ('PNG', 'JPEG', 'OPEN_EXR', 'TIFF'):
    r.image_settings.file_format = fmt
    for use_ext in (True, False):
        r.use_file_extension = use_ext
        for path in ('//renders/shot_##', '//out/a_####.png', '//out/a_####.jpeg', '//o#/a', '//a.b',
                     '//x_#_y_##', '//a####.txt', '//../up/f_###_v2', '/abs/dir/', '/abs/dir/name.'):
            r.filepath = path
            for frame in (7, 12345):
                samples.append([path, r.file_extension if use_ext else '', frame, r.frame_path(frame=frame)])
r.use_file_extension = True
r.filepath = '//renders/shot_##'
r.image_settings.file_format = 'FFMPEG'
bpy.ops.wm.save_as_mainfile(filepath=out + '/movie.blend', copy=True)
json.dump({'folder': bpy.path.abspath('//'), 'samples': samples}, open(out + '/samples.json', 'w'))
"""


@pytest.fixture(scope="module")
def blends(tmp_path_factory: pytest.TempPathFactory) -> Path:
    blender = require_tool("blender")
    folder = tmp_path_factory.mktemp("blends")
    (folder / "make.py").write_text(MAKE_BLENDS)
    subprocess.run([blender, "-b", "--factory-startup", "--python", str(folder / "make.py"), "--", str(folder)],
                   check=True, capture_output=True, timeout=120)
    return folder


def cli(farm: Farm, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--share", str(farm.share), *args])
    return code, out.getvalue(), err.getvalue()


def shot(blends: Path, dest: Path, name: str = "scene.blend") -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / name).write_bytes((blends / name).read_bytes())
    return dest / name


def test_envy_names_frame_files_as_real_blender_does(blends: Path) -> None:
    data = json.loads((blends / "samples.json").read_text())
    scene_dir = Path(data["folder"])
    for path, ext, frame, blender_says in data["samples"]:
        assert str(frame_file(path, ext, frame, scene_dir)) == blender_says, (path, ext, frame)


def test_blender_is_asked_for_the_range_step_output_and_format(blends: Path) -> None:
    scene = ask_blender(require_tool("blender"), blends / "scene.blend")
    assert (scene.frame_start, scene.frame_end, scene.frame_step) == (3, 7, 2)
    assert (scene.filepath, scene.file_format, scene.file_extension) == ("//renders/shot_##", "JPEG", ".jpg")
    assert scene.first_frame_path == str(blends / "renders" / "shot_03.jpg") and not scene.is_movie
    with pytest.raises(BlendSceneError, match=r"did not read scene.blend within 0 s"):
        ask_blender(require_tool("blender"), blends / "scene.blend", timeout=0.05)


def test_blend_job_keeps_the_scenes_range_and_output_and_a_real_agent_renders_there(
    farm: Farm, blends: Path, tmp_path: Path
) -> None:
    blend = shot(blends, tmp_path / "proj" / "turntable")
    code, out, err = cli(farm, "submit", str(blend), "--chunk", "3")
    assert code == 0, err
    assert "frames 3-7 every 2, written as the scene says: //renders/shot_## (JPEG)" in out
    job = json.loads(next(farm.layout.jobs_dir.glob("*.json")).read_text())
    assert job["frames"] == "3-7 every 2" and job["output"] is None
    assert job["settings"] == {"frame_step": 2, "scene_output": "//renders/shot_##", "scene_output_ext": ".jpg",
                               "scene_format": "JPEG"}
    tasks = farm.layout.jobs_dir / job["id"] / "tasks"
    assert [json.loads(p.read_text()) for p in tasks.iterdir()] == [{"type": "range", "start": 3, "end": 7,
                                                                      "step": 2}]
    agent = farm.start_agent("lab4-01")
    farm.wait_heartbeat(agent)
    farm.send("lab4 * render()")
    wait_for(lambda: any(".envy~done~" in p.name for p in tasks.iterdir()), 120, "the chunk done")
    renders = blend.parent / "renders"
    assert sorted(p.name for p in renders.iterdir()) == ["shot_03.jpg", "shot_05.jpg", "shot_07.jpg"]
    assert all(p.read_bytes()[:2] == b"\xff\xd8" for p in renders.iterdir()), "JPEG, as the .blend says"
    assert not list(blend.parent.glob("*.png")), "no PNG forced beside the scene"
    thumbs = farm.layout.jobs_dir / job["id"] / "thumbs"
    wait_for(lambda: thumbs.is_dir() and any(thumbs.iterdir()), 30, "the chunk's thumbnail")
    code, out, _ = cli(farm, "jobs", job["name"], "--json")
    assert code == 0 and '"complete"' in out


def test_frames_and_output_override_the_blend(farm: Farm, blends: Path, tmp_path: Path) -> None:
    blend = shot(blends, tmp_path / "proj" / "walk")
    code, _, err = cli(farm, "submit", str(blend), "--frames", "4-8", "--chunk", "2",
                       "--output", str(tmp_path / "out"), "--json")
    assert code == 0, err
    job = json.loads(next(farm.layout.jobs_dir.glob("*.json")).read_text())
    # --output sets the folder; the .blend's image format (JPEG) is kept. Blender's -a keeps the step.
    assert job["frames"] == "4-8 every 2"
    assert job["settings"] == {"frame_step": 2, "scene_output_ext": ".jpg", "scene_format": "JPEG"}
    tasks = sorted((farm.layout.jobs_dir / job["id"] / "tasks").iterdir())
    assert [json.loads(p.read_text()) for p in tasks] == [
        {"type": "range", "start": 4, "end": 6, "step": 2}, {"type": "range", "start": 8, "end": 8, "step": 2}]
    agent = farm.start_agent("lab4-02")
    farm.wait_heartbeat(agent)
    farm.send("lab4 * render()")
    task_dir = farm.layout.jobs_dir / job["id"] / "tasks"
    wait_for(lambda: sum(".envy~done~" in p.name for p in task_dir.iterdir()) == 2, 120, "both chunks done")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["scene_0004.jpg", "scene_0006.jpg", "scene_0008.jpg"]
    assert all(p.read_bytes()[:2] == b"\xff\xd8" for p in out.iterdir()), "JPEG, the .blend's own format"


def test_bad_blends_and_a_missing_blender_are_one_line_errors(farm: Farm, blends: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.blend"
    broken.write_text("not a blend file")
    code, out, err = cli(farm, "submit", str(broken))
    assert code != 0 and not out
    assert err.strip().count("\n") == 0 and "Blender could not read broken.blend: Error: " in err
    movie = shot(blends, tmp_path / "m", "movie.blend")
    code, _, err = cli(farm, "submit", str(movie))
    assert code != 0 and err.strip().count("\n") == 0
    assert "renders a movie (FFMPEG); a farm renders frames" in err and "--output FOLDER" in err
    config = tmp_path / "config.yaml"
    config.write_text("renderers:\n  blender:\n    executable: /nowhere/blender\n")
    code, _, err = cli(farm, "--config", str(config), "submit", str(movie))
    assert code != 0 and err.strip().count("\n") == 0
    assert "Blender is needed to read the .blend's frame range and output but is not found here" in err
    assert "give both --frames A-B and --output FOLDER" in err
    code, _, err = cli(farm, "--config", str(config), "submit", str(movie), "--frames", "1-2", "--output",
                       str(tmp_path / "o"))
    assert code == 0, err  # the job sets everything Blender would have been asked
    assert not list((tmp_path / "m").glob("*.envy*"))


def test_still_pov_needs_no_frames_and_a_real_agent_renders_one_image(farm: Farm, tmp_path: Path) -> None:
    require_tool("povray")
    scene = tmp_path / "stills" / "teapot.pov"
    scene.parent.mkdir()
    scene.write_text(
        "#version 3.7;\n// no clock here: a still (the word clock in a comment does not count)\n"
        'global_settings { assumed_gamma 1.0 }\n#declare Label = "clock";\n'
        "camera { location <0, 1, -4> look_at <0, 0.5, 0> }\nlight_source { <2, 4, -3> color rgb 1 }\n"
        "sphere { <0, 0.5, 0>, 0.5 pigment { color rgb <1, 0.5, 0.1> } }\n"
    )
    code, out, err = cli(farm, "submit", str(scene))
    assert code == 0, err
    assert "1 tasks" in out
    job = json.loads(next(farm.layout.jobs_dir.glob("*.json")).read_text())
    tasks = farm.layout.jobs_dir / job["id"] / "tasks"
    assert [p.name for p in tasks.iterdir()] == ["teapot.json"] and job["frames"] is None
    agent = farm.start_agent("lab5-01")
    farm.wait_heartbeat(agent)
    farm.send("lab5 * render()")
    wait_for(lambda: any(".envy~done~" in p.name for p in tasks.iterdir()), 60, "the still done")
    assert is_png(scene.parent / "teapot.png")
    assert sorted(p.name for p in scene.parent.iterdir()) == ["teapot.png", "teapot.pov"], "no temp files left"


def test_animated_pov_without_frames_is_refused_with_the_fix(tmp_path: Path) -> None:
    scene = tmp_path / "ball.pov"
    scene.write_text("sphere { <clock, 0, 0>, 1 }\n")
    with pytest.raises(JobError, match=r"is animated \(it uses clock or frame_number\): give --frames A-B"):
        scene_frames(scene, str(scene), load_profiles([])["povray"], None, None, {})
    assert scene_frames(scene, str(scene), load_profiles([])["povray"], (1, 4), None, {}).text == "1-4"


def test_range_chunks_start_on_frames_the_scene_renders(tmp_path: Path) -> None:
    layout = ShareLayout(tmp_path)
    job = Job(id="20260101-000000-a-0000", name="a", kind="tasks", renderer="blender", source="a.blend",
              extensions=[".json"])
    assert write_range_tasks(layout, job, "a", 1, 10, 2, REAL_FS, step=3) == 2
    found = sorted((p.name, json.loads(p.read_text())) for p in job.tasks_dir(layout).iterdir())
    assert found == [("a.0001-0004.json", {"type": "range", "start": 1, "end": 4, "step": 3}),
                     ("a.0007-0010.json", {"type": "range", "start": 7, "end": 10, "step": 3})]


def plan_range(tmp_path: Path, settings: object, task: dict, **job: object) -> WorkPlan:
    """The agent's plan for a range task of a .blend job whose job file says ``settings`` (anyone can write it)."""
    scene = tmp_path / "proj" / "a.blend"
    job_file = Job(id="20260101-000000-a-0000", name="a", kind="tasks", renderer="blender", source=str(scene),
                   extensions=[".json"], **job)  # type: ignore[arg-type]
    job_file.settings = settings  # type: ignore[assignment]
    claim = Claim(tmp_path / "tasks", ItemName("a.0003-0007", ".json", "pending"))
    config = Config(renderers={"blender": {"executable": sys.executable}})
    return plan_range_task(PlanInput(job_file, claim, load_profiles(), config, "n0nce", tmp_path, REAL_FS), task)


def test_the_agent_expects_frames_where_the_blend_writes_them_and_forces_no_output(tmp_path: Path) -> None:
    own = {"scene_output": "P:/renders/", "scene_output_ext": ".exr", "scene_format": "OPEN_EXR"}
    plan = plan_range(tmp_path, own, {"type": "range", "start": 3, "end": 7, "step": 2},
                      remap=[f"P:/,{tmp_path}/mnt/"])
    assert [str(o.final) for o in plan.outputs] == [f"{tmp_path}/mnt/renders/{f:04d}.exr" for f in (3, 5, 7)]
    assert plan.frames == [3, 5, 7] and "-o" not in plan.argv and "-F" not in plan.argv
    # --output: the job's folder wins, the .blend's format stays.
    moved = plan_range(tmp_path, {k: v for k, v in own.items() if k != "scene_output"},
                       {"type": "range", "start": 3, "end": 4}, output=str(tmp_path / "out"))
    assert moved.argv[moved.argv.index("-F") + 1] == "OPEN_EXR"
    assert [o.final.name for o in moved.outputs] == ["a_0003.exr", "a_0004.exr"]
    # No format recorded (a movie .blend, or a job from an older Envy): PNG frames.
    png = plan_range(tmp_path, {}, {"type": "range", "start": 3, "end": 4}, output=str(tmp_path / "out"))
    assert png.argv[png.argv.index("-F") + 1] == "PNG"
    assert [o.final.name for o in png.outputs] == ["a_0003.png", "a_0004.png"]


@pytest.mark.parametrize(("settings", "task", "message"), [
    ({"scene_output": 5}, {"type": "range", "start": 1, "end": 2}, "'scene_output' must be a path"),
    ({"scene_output": "//x", "scene_output_ext": ["x"]}, {"type": "range", "start": 1, "end": 2}, "an extension"),
    ({"scene_output": "x" * 5000}, {"type": "range", "start": 1, "end": 2}, "must be a path"),
    ({}, {"type": "range", "start": 1, "end": 2, "step": "2"}, "step must be a whole number from 1"),
    ({}, {"type": "range", "start": 1, "end": 2, "step": 0}, "step must be a whole number from 1"),
    ({}, {"type": "range", "start": 1, "end": 2, "step": True}, "step must be a whole number from 1"),
])
def test_hostile_scene_settings_and_steps_fail_the_item_with_one_line(
    tmp_path: Path, settings: dict, task: dict, message: str
) -> None:
    with pytest.raises(PlanError, match=message):
        plan_range(tmp_path, settings, task)


@pytest.mark.parametrize("settings", [{"scene_format": "PNG -P evil.py", "scene_output_ext": ".png"},
                                      {"scene_format": "PNG", "scene_output_ext": "png/../x"},
                                      {"scene_format": ["PNG"], "scene_output_ext": ".png"}])
def test_a_hostile_recorded_format_fails_the_item_and_reaches_no_renderer(tmp_path: Path, settings: dict) -> None:
    with pytest.raises(PlanError, match="must be a format word like 'OPEN_EXR' and an extension"):
        plan_range(tmp_path, settings, {"type": "range", "start": 1, "end": 2}, output=str(tmp_path / "out"))
