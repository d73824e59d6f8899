"""Real POV-Ray renders on a farm of real agent subprocesses."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import require_tool
from envy.render.claims import ItemPattern, sort_listing
from farm import Farm, wait_for
from render_helpers import completions, is_png, pov_frames, submit_folder


def test_three_agents_render_12_frames_each_exactly_once(farm: Farm, tmp_path: Path) -> None:
    require_tool("povray")
    frames = pov_frames(tmp_path / "shot010" / "frames", 12)
    job = submit_folder(farm.share, frames)
    assert job.renderer == "povray" and job.kind == "frames"
    agents = [farm.start_agent(f"lab1-0{i}") for i in (1, 2, 3)]
    for a in agents:
        farm.wait_heartbeat(a)
    farm.send("lab1 * render()")
    pattern = ItemPattern([".pov"])
    wait_for(lambda: len(sort_listing([p.name for p in frames.iterdir()], pattern).done) == 12, 150, "12 frames done")
    logs = [farm.log(a.host) for a in agents]
    for i in range(1, 13):
        base = f"shot010.{i:04d}"
        png = frames / f"{base}.png"
        assert png.exists() and is_png(png), f"{png.name} is not a valid PNG"
        assert completions(logs, base) == 1, f"{base} completed {completions(logs, base)} times"
        # The per-frame logs show one attempt only, and the renderer read the included scene.inc.
        frame_logs = list((farm.layout.jobs_dir / job.id / "logs").glob(f"{base}.*.log"))
        assert len(frame_logs) == 1
        assert "Parse Error" not in frame_logs[0].read_text(errors="replace")
    assert all(sum(completions([log], f"shot010.{i:04d}") for i in range(1, 13)) > 0 for log in logs), (
        "every agent worked"
    )
    assert not [p for p in frames.iterdir() if "envy~tmp~" in p.name], "no temp outputs left"
    assert not re.search(r"ERROR|Traceback", "\n".join(logs))


def test_animated_pov_scene_with_frame_range_becomes_chunked_tasks(farm: Farm, tmp_path: Path) -> None:
    require_tool("povray")
    scene_dir = tmp_path / "anim"
    scene_dir.mkdir()
    (scene_dir / "ball.pov").write_text(
        "#version 3.7;\nglobal_settings { assumed_gamma 1.0 }\n"
        "camera { location <0, 1, -4> look_at <0, 0.5, 0> }\nlight_source { <2, 4, -3> color rgb 1 }\n"
        "sphere { <-1 + frame_number * 0.3, 0.5, 0>, 0.5 pigment { color rgb <1, 0.5, 0.1> } }\n"
        "plane { y, 0 pigment { checker color rgb 1 color rgb 0.2 } }\n"
    )
    job = submit_folder(farm.share, scene_dir / "ball.pov", frames="1-6", chunk=2, output=str(tmp_path / "out"))
    assert job.kind == "tasks"
    tasks = sorted(p.name for p in job.tasks_dir(farm.layout).iterdir())
    assert tasks == ["ball.0001-0002.json", "ball.0003-0004.json", "ball.0005-0006.json"]
    a = farm.start_agent("lab2-01")
    farm.wait_heartbeat(a)
    farm.send("lab2 * render()")
    wait_for(
        lambda: len([n for n in (p.name for p in job.tasks_dir(farm.layout).iterdir()) if ".envy~done~" in n]) == 3,
        90,
        "3 chunks done",
    )
    images = sorted(p for p in (tmp_path / "out").iterdir() if p.suffix == ".png")
    assert len(images) == 6 and all(is_png(p) for p in images)
