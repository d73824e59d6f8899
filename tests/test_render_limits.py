"""Process handler limits on a render: memory cap, threads, low priority, render mode across restart."""

from __future__ import annotations

import json
from pathlib import Path

from envy.render.claims import ItemPattern, sort_listing
from envy.render.jobs import list_jobs
from envy.render.overview import summarize
from envy.render.remap import PathRemap
from envy.share.fs import REAL_FS
from farm import Farm, wait_for
from render_helpers import standin_profile, submit_folder

HOG = "import time; block = bytearray(400 * 1024 * 1024); time.sleep(30)"
RECORD = ("import sys, os, json, pathlib; pathlib.Path(sys.argv[2] + '.json').write_text(json.dumps("
          "dict(argv=sys.argv, nice=os.nice(0)))); pathlib.Path(sys.argv[2]).write_bytes(b'png'); print('100%')")


def one_frame(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "shot.0001.frame").write_text("{}")
    return folder


def test_standin_renderer_over_the_memory_cap_is_killed_and_the_frame_failed_with_the_reason(
    farm: Farm, tmp_path: Path
) -> None:
    profile = standin_profile(tmp_path / "hog.yaml", "standin-hog", HOG)
    folder = one_frame(tmp_path / "frames")
    submit_folder(farm.share, folder, profiles=[profile], output=str(tmp_path / "out"), max_retries=0)
    a = farm.start_agent("lab1-01", profiles=[str(profile)], memory_mb=100)
    farm.wait_heartbeat(a)
    farm.send("* render()")
    pattern = ItemPattern([".frame"])
    wait_for(lambda: sort_listing([p.name for p in folder.iterdir()], pattern).failed, 40, "the frame to fail")
    jobs, _ = list_jobs(farm.layout, fs=REAL_FS)
    reason = summarize(farm.layout, jobs[0], PathRemap.parse([]), fs=REAL_FS).failures["shot.0001.frame"]
    assert "memory limit 100 MB exceeded" in reason
    assert a.alive()


def test_standin_renderer_gets_threads_and_low_priority(farm: Farm, tmp_path: Path) -> None:
    profile = tmp_path / "rec.yaml"
    standin_profile(profile, "standin-rec", RECORD)
    profile.write_text(profile.read_text() + "threads_arg: ['--threads={threads}']\n")
    folder = one_frame(tmp_path / "frames")
    out = tmp_path / "out"
    submit_folder(farm.share, folder, profiles=[profile], output=str(out))
    a = farm.start_agent("lab1-01", profiles=[str(profile)], threads=3)
    farm.wait_heartbeat(a)
    farm.send("* render()")
    wait_for(lambda: (out / "shot.0001.png").exists(), 30, "the frame")
    record = json.loads(next(out.glob("*.json")).read_text())
    assert "--threads=3" in record["argv"]
    assert record["nice"] >= 10


def test_render_mode_survives_restart(farm: Farm, tmp_path: Path) -> None:
    profile = standin_profile(tmp_path / "rec.yaml", "standin-rec", RECORD)
    a = farm.start_agent("lab1-01", profiles=[str(profile)])
    farm.wait_heartbeat(a)
    farm.send("* render()")
    wait_for(lambda: (farm.status("lab1-01") or {}).get("state") == "rendering", 15, "render mode")
    first = farm.status("lab1-01")["nonce"]  # type: ignore[index]
    farm.send("* restart()")
    wait_for(lambda: (farm.status("lab1-01") or {}).get("nonce") != first
             and (farm.status("lab1-01") or {}).get("state") == "rendering", 20, "rendering again after restart")
    folder = one_frame(tmp_path / "frames")
    submit_folder(farm.share, folder, profiles=[profile], output=str(tmp_path / "out"))
    wait_for(lambda: (tmp_path / "out" / "shot.0001.png").exists(), 30, "a job submitted after the restart to render")
    farm.send("* stop()")
    wait_for(lambda: (farm.status("lab1-01") or {}).get("state") == "idle", 15, "idle after stop()")


def test_agent_started_with_render_flag_works_through_the_queue_at_once(farm: Farm, tmp_path: Path) -> None:
    profile = standin_profile(tmp_path / "rec.yaml", "standin-rec", RECORD)
    folder = one_frame(tmp_path / "frames")
    submit_folder(farm.share, folder, profiles=[profile], output=str(tmp_path / "out"))
    a = farm.start_agent("lab1-01", extra=["--render"], profiles=[str(profile)])
    farm.wait_heartbeat(a)
    wait_for(lambda: (tmp_path / "out" / "shot.0001.png").exists(), 30, "the frame, with no render() sent")
