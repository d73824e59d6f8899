"""Real agents and real POV-Ray: the end of a session, a hard kill, two shares, someone at the machine.

Issue 10. Every agent is a real ``python -m envy agent`` subprocess on a
real temporary share; every render is a real POV-Ray render.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import require_tool
from envy.platform.idle import X11InputIdle
from envy.platform.processes import is_alive
from envy.render.claims import ItemPattern
from farm import AgentProc, Farm, wait_for
from render_helpers import completions, pov_frames, submit_folder

# dead_after far beyond every wait below: a frame picked up in time was given back, not reclaimed.
LONG_DEAD_AFTER = {"dead_after": 120}
PATTERN = ItemPattern([".pov"])


def _profile(path: Path, size: tuple[int, int]) -> Path:
    """Real POV-Ray at a size that keeps it busy for a while (its progress lines feed the status)."""
    path.write_text(
        "name: povray-test\nextensions: [.pov]\n"
        "executables: {linux: [/usr/bin/povray, povray], darwin: [povray], windows: [pvengine64.exe]}\n"
        f"argv: ['+I\"{{scene}}\"', +W{size[0]}, +H{size[1]}, +A0.3, -D, +V, +FN]\n"
        "output_arg: ['+O\"{output}\"']\noutput_ext: .png\noutput_next_to_scene: true\n"
        "progress: ['Rendered (?P<done>\\d+) of (?P<total>\\d+) pixels']\nerrors: ['^Parse Error', 'Fatal error']\n"
    )
    return path


def _renderers_of(agent: AgentProc) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(agent.pid).children(recursive=True) if p.name() == "povray"]
    except psutil.Error:
        return []


def _rendering(agent: AgentProc) -> list[psutil.Process]:
    procs = _renderers_of(agent)
    try:
        return procs if procs and procs[0].cpu_times().user > 0.3 else []
    except psutil.Error:
        return []


def _frame_state(folder: Path) -> list[tuple[str, str]]:
    """(state, host) of the job's one frame as its name says, for every name it has in the folder."""
    items = [PATTERN.parse(name) for name in os.listdir(folder)]
    return [(i.state, i.host) for i in items if i is not None]


def _start_rendering(farm: Farm, tmp_path: Path, host: str, size: tuple[int, int], **settings: object) \
        -> tuple[AgentProc, Path, list[psutil.Process]]:
    require_tool("povray")
    frames = pov_frames(tmp_path / "shot" / "frames", 1)
    profile = _profile(tmp_path / "povray-test.yaml", size)
    submit_folder(farm.share, frames, renderer="povray-test", profiles=[profile])
    agent = farm.start_agent(host, profiles=[str(profile)], **settings)
    farm.wait_heartbeat(agent)
    farm.send(f"{host} render()")
    renders = wait_for(lambda: _rendering(agent), 60, f"{host} to be rendering")
    return agent, frames, renders  # type: ignore[return-value]


@pytest.mark.povray
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_frame_stops_cleanly_and_another_agent_renders_the_frame(
        farm: Farm, tmp_path: Path, sig: signal.Signals) -> None:
    victim, frames, renders = _start_rendering(farm, tmp_path, "lab9-01", (800, 600), **LONG_DEAD_AFTER)
    rescuer = farm.start_agent("lab9-02", profiles=[str(tmp_path / "povray-test.yaml")], **LONG_DEAD_AFTER)
    farm.wait_heartbeat(rescuer)
    farm.send("lab9-02 render()")
    wait_for(lambda: "render: 1 worker" in farm.log("lab9-02"), 30, "the rescuer to join the render queue")

    victim.popen.send_signal(sig)
    signalled = time.monotonic()
    # Pending again (or already claimed by the rescuer), no longer the victim's, within 2 s.
    wait_for(lambda: all(host != "lab9-01" or state == "pending" for state, host in _frame_state(frames)), 2.0,
             "the frame to be given back")
    assert victim.wait_exit(timeout=10) == 0
    assert time.monotonic() - signalled < 5, "the documented bound is a few seconds"
    wait_for(lambda: not any(is_alive(p) for p in renders), 2.0, "the victim's renderer to be gone")
    status = farm.status("lab9-01") or {}
    assert status.get("state") == "stopped"
    assert signal.Signals(sig).name in str(status.get("stopped_reason", "")) + str(status.get("message", ""))
    # The rescuer takes it at its next look (dead_after is 120 s) and renders it, once.
    wait_for(lambda: completions([farm.log("lab9-02")], "shot010.0001") == 1, 100, "the rescuer to render the frame")
    assert time.monotonic() - signalled < LONG_DEAD_AFTER["dead_after"]
    assert "reclaimed" not in farm.log("lab9-02")
    assert completions([farm.log("lab9-01"), farm.log("lab9-02")], "shot010.0001") == 1


@pytest.mark.povray
def test_kill_9_of_an_agent_mid_frame_leaves_no_renderer_within_2_s(farm: Farm, tmp_path: Path) -> None:
    victim, _frames, renders = _start_rendering(farm, tmp_path, "lab9-03", (3200, 2400))
    victim.kill9()
    wait_for(lambda: not any(is_alive(p) for p in renders), 2.0, "the renderer to die with its agent")


def test_one_host_name_on_two_shares_runs_twice_and_a_third_is_refused(farm: Farm, tmp_path: Path) -> None:
    from envy.share.fs import REAL_FS
    from envy.share.layout import init_share

    other = tmp_path / "share-b"
    init_share(other, farm.user, REAL_FS)
    a = farm.start_agent("twin")
    b = farm.start_agent("twin", share=other)
    farm.wait_heartbeat(a)
    wait_for(lambda: b.alive() and "starting" not in str((_status_on(other, "twin") or {}).get("state", "starting")),
             20, "the agent on the second share to heartbeat")
    third = farm.start_agent("twin")
    assert third.wait_exit(timeout=30) == 2
    out = third.output()
    assert str(farm.share) in out and f"pid {a.pid}" in out
    assert a.alive() and b.alive()


def _status_on(share: Path, host: str) -> dict | None:
    import json

    from envy.share.layout import ShareLayout

    try:
        return json.loads(ShareLayout(share).status_file(host).read_text())
    except (OSError, ValueError):
        return None


@pytest.fixture
def x_display() -> Iterator[str]:
    require_tool("Xvfb")
    require_tool("xdotool")
    for _attempt in range(10):
        number = random.randint(100, 900)
        if Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = X11InputIdle(f":{number}")
        wait_for(lambda s=server, p=probe: s.poll() is not None or p() is not None, 20, "Xvfb")
        probe.close()
        if server.poll() is None:
            break
    else:
        pytest.fail("could not start Xvfb")
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.povray
def test_someone_at_the_machine_pauses_the_agents_render_and_idle_resumes_it(
        farm: Farm, tmp_path: Path, x_display: str) -> None:
    farm.env["DISPLAY"] = x_display
    idle = X11InputIdle(x_display)
    wait_for(lambda: (idle() or 0) > 3.5, 20, "the X display to be idle")
    agent, frames, renders = _start_rendering(farm, tmp_path, "lab9-04", (800, 600),
                                              when_in_use="pause", idle_after=0.05)
    subprocess.run(["xdotool", "mousemove", "300", "200"], env={**os.environ, "DISPLAY": x_display}, check=True)
    touched = time.monotonic()
    poll = farm.settings["poll_interval"]
    wait_for(lambda: all(p.status() == psutil.STATUS_STOPPED for p in renders), poll + 1.0, "the render to pause")
    wait_for(lambda: "paused: someone is using this machine" in str(farm.status("lab9-04")), 5,
             "the status to say why")
    wait_for(lambda: all(p.status() != psutil.STATUS_STOPPED for p in renders if is_alive(p)), 10,
             "the render to resume")
    assert time.monotonic() - touched >= 3.0 - 0.1
    wait_for(lambda: completions([farm.log("lab9-04")], "shot010.0001") == 1, 120, "the frame to complete")
    assert ("done", "lab9-04") in _frame_state(frames) or any(s == "done" for s, _ in _frame_state(frames))
    idle.close()
