"""A failing render is retried (on another host when there is one), then marked failed with its reason."""

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

FAIL = "import sys; print('FATAL: licence server not found'); sys.exit(3)"
NO_OUTPUT = "import sys; print('100%')"


def make_frames(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(1, count + 1):
        (folder / f"shot.{i:04d}.frame").write_text(json.dumps({"frame": i}))
    return folder


def test_standin_renderer_failing_frame_is_retried_on_other_hosts_then_failed_with_reason(
    farm: Farm, tmp_path: Path
) -> None:
    profile = standin_profile(tmp_path / "fail.yaml", "standin-fail", FAIL)
    frames = make_frames(tmp_path / "frames", 1)
    job = submit_folder(farm.share, frames, profiles=[profile], output=str(tmp_path / "out"))
    agents = [farm.start_agent(h, profiles=[str(profile)]) for h in ("lab1-01", "lab1-02")]
    for a in agents:
        farm.wait_heartbeat(a)
    farm.send("lab1 * render()")
    pattern = ItemPattern([".frame"])
    wait_for(lambda: sort_listing([p.name for p in frames.iterdir()], pattern).failed, 60, "the frame to fail for good")
    failed = sort_listing([p.name for p in frames.iterdir()], pattern).failed[0]
    assert failed.failures == 3  # the first try and 2 retries (the default)
    attempts = sorted((job.logs_dir(farm.layout)).glob("shot.0001.*.log"), key=lambda p: p.name.rsplit(".", 2)[-2])
    hosts = [p.name.split(".")[2] for p in sorted(attempts, key=lambda p: int(p.name.split(".")[3]))]
    assert len(hosts) == 3
    assert hosts[0] != hosts[1] and hosts[1] != hosts[2], f"retries should move to another host: {hosts}"
    for log in attempts:
        assert "ENVY FAILED: renderer reported an error: FATAL: licence server not found" in log.read_text()
    jobs, _ = list_jobs(farm.layout, fs=REAL_FS)
    summary = summarize(farm.layout, jobs[0], PathRemap.parse([]), fs=REAL_FS)
    assert summary.failed == 1 and summary.done == 0
    assert summary.failures["shot.0001.frame"] == "renderer reported an error: FATAL: licence server not found"


def test_standin_renderer_exit_0_without_output_is_a_failure(farm: Farm, tmp_path: Path) -> None:
    profile = standin_profile(tmp_path / "noout.yaml", "standin-noout", NO_OUTPUT)
    frames = make_frames(tmp_path / "frames", 1)
    submit_folder(farm.share, frames, profiles=[profile], output=str(tmp_path / "out"), max_retries=0)
    a = farm.start_agent("lab1-01", profiles=[str(profile)])
    farm.wait_heartbeat(a)
    farm.send("* render()")
    pattern = ItemPattern([".frame"])
    wait_for(lambda: sort_listing([p.name for p in frames.iterdir()], pattern).failed, 30, "the frame to fail")
    jobs, _ = list_jobs(farm.layout, fs=REAL_FS)
    reason = summarize(farm.layout, jobs[0], PathRemap.parse([]), fs=REAL_FS).failures["shot.0001.frame"]
    assert reason.startswith("expected output missing or empty")
