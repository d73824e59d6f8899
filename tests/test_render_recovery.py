"""A render may crash, an agent may die or freeze: no frame is lost or done twice."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from conftest import require_tool
from envy.render.claims import ItemPattern, sort_listing
from envy.share.fs import REAL_FS
from farm import BUSY_DEADLINE_S, Farm, wait_for
from render_helpers import is_png, pov_frames, slow_povray_profile, submit_folder

# Lab machines are busy machines: CI runs these once more beside stress-ng (.ci/run).
pytestmark = pytest.mark.under_load

# Two slow POV-Ray frames one after the other on a one-worker agent took over 100 s each
# at load 30 to 50 on this 2-core machine: an upper bound for a busy machine, not a timing.
RENDERS_DEADLINE_S = 300.0


def listing(folder: Path):  # type: ignore[no-untyped-def]
    return sort_listing([p.name for p in folder.iterdir()], ItemPattern([".pov"]))


def renderer_children(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if "povray" in p.name()]
    except psutil.NoSuchProcess:
        return []


def test_kill_9_mid_frame_frame_is_reclaimed_once_and_no_renderer_survives(farm: Farm, tmp_path: Path) -> None:
    require_tool("povray")
    profile = slow_povray_profile(tmp_path / "slow.yaml")
    frames = pov_frames(tmp_path / "frames", 2)
    submit_folder(farm.share, frames, renderer="povray-slow", profiles=[profile])
    victim = farm.start_agent("lab1-01", profiles=[str(profile)])
    farm.wait_heartbeat(victim)
    farm.send("lab1-01 render()")
    renders = wait_for(lambda: renderer_children(victim.pid), BUSY_DEADLINE_S, "the victim to start rendering")
    claimed = wait_for(lambda: listing(frames).working, BUSY_DEADLINE_S, "a claimed frame")
    frame = claimed[0].base  # type: ignore[index]
    victim.kill9()
    # No renderer of the killed agent survives: on Linux it gets SIGKILL when its agent dies
    # (envy/platform/processes.py); the 20 s is the bound docs/admin-guide.md states, under load too.
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in renders), 20,  # type: ignore[union-attr]
             "the killed agent's renderer to be gone")
    rescuer = farm.start_agent("lab1-02", profiles=[str(profile)])
    farm.wait_heartbeat(rescuer)
    farm.send("lab1-02 render()")
    wait_for(lambda: len(listing(frames).done) == 2, RENDERS_DEADLINE_S, "both frames done by the rescuer")
    log = farm.log("lab1-02")
    assert log.count(f"reclaimed {frame}.pov") == 1
    assert is_png(frames / f"{frame}.png")
    done = {i.base: i.host for i in listing(frames).done}
    assert done[frame] == "lab1-02"


def workers_idle(farm: Farm, host: str) -> bool:
    """The host's status file shows render workers, none of them on a frame."""
    workers = (farm.status(host) or {}).get("workers") or []
    return bool(workers) and all(w.get("frame") is None for w in workers)


def test_sigstop_past_dead_timeout_does_not_complete_twice_or_overwrite(farm: Farm, tmp_path: Path) -> None:
    require_tool("povray")
    profile = slow_povray_profile(tmp_path / "slow.yaml")
    frames = pov_frames(tmp_path / "frames", 1)
    submit_folder(farm.share, frames, renderer="povray-slow", profiles=[profile])
    sleeper = farm.start_agent("lab1-01", profiles=[str(profile)])
    farm.wait_heartbeat(sleeper)
    farm.send("lab1-01 render()")
    wait_for(lambda: renderer_children(sleeper.pid), BUSY_DEADLINE_S, "the first agent to start rendering")
    sleeper.pause()  # like a laptop lid closing mid-frame
    try:
        other = farm.start_agent("lab1-02", profiles=[str(profile)])
        farm.wait_heartbeat(other)
        farm.send("lab1-02 render()")
        wait_for(lambda: "reclaimed shot010.0001.pov" in farm.log("lab1-02"), 60, "the frame to be reclaimed")
        wait_for(lambda: len(listing(frames).done) == 1, RENDERS_DEADLINE_S, "the reclaimer to finish the frame")
        output = frames / "shot010.0001.png"
        reclaimer_image = output.read_bytes()
        # Its last status before the pause may predate the frame (a heartbeat just before the
        # claim): only a status written after the pause says what its worker does now.
        paused_at = (farm.status("lab1-01") or {}).get("counter", 0)
    finally:
        sleeper.resume()
    wait_for(lambda: "no longer mine" in farm.log("lab1-01") or "taken over" in farm.log("lab1-01"), 60,
             "the woken agent to notice it lost the claim")
    # The woken agent's worker goes idle: it has given the frame up for good (the frame
    # is done, so there is nothing left to claim) and cannot act on it any more.
    wait_for(lambda: (farm.status("lab1-01") or {}).get("counter", 0) > paused_at and workers_idle(farm, "lab1-01"),
             30, "the woken agent's worker to be idle")
    assert "completed shot010.0001" not in farm.log("lab1-01")
    assert farm.log("lab1-02").count("completed shot010.0001") == 1
    state = listing(frames)
    assert len(state.done) == 1 and state.done[0].host == "lab1-02" and not state.working and not state.pending
    assert output.read_bytes() == reclaimer_image and is_png(output)
    left = [p.name for p in frames.iterdir() if "envy~tmp~" in p.name]
    assert not left, f"temp outputs left: {left}\n{farm.log('lab1-01')[-3000:]}\n{farm.log('lab1-02')[-3000:]}"


def test_a_reclaimer_removes_the_dead_owners_temp_image(tmp_path: Path) -> None:
    """In-process: a reclaimed frame's old temp output and POV-Ray's .pov-state (left by a killed render)
    are removed."""
    from envy.render.claims import FolderQueue, Identity, ItemPattern

    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "shot.0001.pov").write_text("scene")
    dead = FolderQueue(frames, ItemPattern([".pov"]), Identity("lab1-01", 111, "deadbeef"), fs=REAL_FS)
    stale = dead.claim_next()
    assert stale is not None
    leftover = frames / "shot.0001.envy~tmp~deadbeef.png"
    leftover.write_bytes(b"half an image")
    state = frames / "shot.0001.envy~tmp~deadbeef.pov-state"  # POV-Ray's continue-state file
    state.write_bytes(b"povray state")
    other_agents = frames / "shot.0001.envy~tmp~11111111.pov-state"
    other_agents.write_bytes(b"a live render's state")
    mine = FolderQueue(frames, ItemPattern([".pov"]), Identity("lab1-02", 222, "0badf00d"), fs=REAL_FS)
    claim = mine.reclaim(stale.item)
    assert claim is not None and claim.reclaimed_from == "deadbeef"

    from envy.render.plans import Output, WorkPlan
    from envy.render.worker import remove_dead_owners_temp

    plan = WorkPlan(
        [], frames, "shot.0001", None, [Output(frames / "shot.0001.envy~tmp~0badf00d.png", frames / "shot.0001.png")]
    )
    remove_dead_owners_temp(plan, "0badf00d", claim.reclaimed_from, REAL_FS)
    assert not leftover.exists() and not state.exists()
    assert other_agents.exists()
