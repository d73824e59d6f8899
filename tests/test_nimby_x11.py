"""NIMBY with real input: Xvfb, xdotool, a real POV-Ray render and the real X11 idle reader.

The render is suspended within one poll of the input, resumed once the
machine has been idle for ``idle_after``, and then finishes (one render, one
image). The same with a real agent is in test_session_agents.py.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from conftest import require_tool
from envy.demo import write_frames
from envy.nimby.control import ProcessTreeControl
from envy.nimby.settings import NimbySettings
from envy.nimby.watcher import NimbyWatcher
from envy.platform.idle import SystemMachineUse, X11InputIdle
from farm import wait_for
from render_helpers import is_png

POLL_S = 0.3
IDLE_AFTER_MIN = 0.05  # 3 s


@pytest.fixture
def x_display() -> Iterator[str]:
    """A private X server on a random high display number (other tests' X servers use the low ones)."""
    require_tool("Xvfb")
    require_tool("xdotool")
    for _attempt in range(10):
        number = random.randint(100, 900)
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = X11InputIdle(f":{number}")
        try:
            wait_for(lambda server=server, probe=probe: server.poll() is not None or probe() is not None,
                     20, "Xvfb to accept clients")
        finally:
            probe.close()
        if server.poll() is None:
            break
    else:
        pytest.fail("could not start Xvfb on a free display")
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@dataclass
class Render:
    pid: int
    create_time: float


def _move_mouse(display: str, x: int) -> None:
    subprocess.run(["xdotool", "mousemove", str(x), "50"], env={**os.environ, "DISPLAY": display}, check=True)


@pytest.mark.povray
def test_input_pauses_the_render_within_one_poll_and_idle_resumes_it(tmp_path: Path, x_display: str) -> None:
    povray = require_tool("povray")
    scenes = tmp_path / "scenes"
    write_frames(scenes, 1, "povray")
    out = tmp_path / "frame.png"
    settings = NimbySettings.from_values({"when_in_use": "pause", "idle_after": IDLE_AFTER_MIN})
    idle = X11InputIdle(x_display)
    wait_for(lambda: (idle() or 0) > settings.idle_after_s + 0.3, 10, "the fresh X display to count as idle")

    child = subprocess.Popen([povray, "+Ishot010.0001.pov", "+W800", "+H600", "-D",
                              "+FN", f"+O{out}"], cwd=scenes, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = psutil.Process(child.pid)
    renders = [Render(child.pid, proc.create_time())]
    holds: list[str] = []
    control = ProcessTreeControl(lambda: renders if child.poll() is None else [], holds.append,
                                 lambda: holds.append("released"), lambda reason: None)
    watcher = NimbyWatcher(settings, SystemMachineUse("nobody-else", idle), control, POLL_S)
    watcher.start()
    try:
        wait_for(lambda: proc.cpu_times().user > 0.3, 20, "POV-Ray to be rendering")
        _move_mouse(x_display, 200)
        touched = time.monotonic()
        wait_for(lambda: proc.status() == psutil.STATUS_STOPPED, POLL_S + 1.0, "the render to be suspended")
        assert watcher.decision.status_text == "paused: someone is using this machine"
        assert holds and holds[0] == "someone is using this machine"  # no new frames meanwhile
        cpu_when_paused = proc.cpu_times()
        wait_for(lambda: proc.status() != psutil.STATUS_STOPPED, settings.idle_after_s + 5, "the render to resume")
        assert time.monotonic() - touched >= settings.idle_after_s - 0.1  # not before idle_after
        # The watcher resumes the render, then releases the hold: a moment apart.
        wait_for(lambda: "released" in holds, 5, "the hold on new frames to be released")
        assert child.wait(timeout=120) == 0
        assert sum(cpu_when_paused[:2]) > 0 and is_png(out)
    finally:
        watcher.stop()
        if child.poll() is None:
            child.kill()
        idle.close()
