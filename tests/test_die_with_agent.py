"""Renders die with their agent even when it is killed hard (envy/platform/die_with_agent.py).

A small real parent process stands in for the agent here, so the test is
about the OS mechanism alone: it starts a real POV-Ray render through
DieWithAgent from a worker thread (as the agent does), is killed with
SIGKILL mid-frame, and no process of the render may be left 2 s later.
The end-to-end case with a real agent is in test_session_end.py.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from conftest import require_tool
from envy.demo import write_frames
from envy.platform import pdeath_start
from envy.platform.die_with_agent import DieWithAgent
from envy.platform.processes import is_alive
from farm import wait_for

ROOT = Path(__file__).resolve().parents[1]

_FAKE_AGENT = textwrap.dedent(
    """
    import subprocess, sys, threading
    sys.path.insert(0, sys.argv[1])
    from envy.platform.die_with_agent import DieWithAgent

    keeper = DieWithAgent(sys.argv[2])
    def render():
        child = subprocess.Popen(keeper.wrap(sys.argv[4:]), start_new_session=True, cwd=sys.argv[3],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        keeper.adopt(child.pid)
        print(child.pid, flush=True)
        threading.Event().wait()  # the worker thread lives as long as its render
    threading.Thread(target=render, daemon=True).start()
    threading.Event().wait()
    """
)


def _povray_argv(tmp_path: Path) -> list[str]:
    povray = require_tool("povray")
    scenes = tmp_path / "scenes"
    write_frames(scenes, 1, "povray")
    scene = scenes / "shot010.0001.pov"
    # Big enough to take far longer than the test: it must be killed mid-frame.
    return [povray, f"+I{scene}", "+W3200", "+H2400", "+A0.01", "+AM2", "+R6", "-D", "+FN",
            f"+O{tmp_path / 'out.png'}"]


def _start_fake_agent(mode: str, argv: list[str], cwd: Path) -> tuple[subprocess.Popen[str], int]:
    agent = subprocess.Popen([sys.executable, "-c", _FAKE_AGENT, str(ROOT), mode, str(cwd), *argv],
                             stdout=subprocess.PIPE, text=True, cwd=str(ROOT))
    assert agent.stdout is not None
    line = agent.stdout.readline()
    assert line.strip().isdigit(), f"fake agent did not report its child: {line!r}"
    return agent, int(line)


def _render_tree(pid: int) -> list[psutil.Process]:
    """The render's process group: the helper or renderer and everything it started."""
    procs = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pid:
                procs.append(proc)
        except OSError:
            continue
    return procs


def _povray_running(pid: int) -> bool:
    for proc in _render_tree(pid):
        try:
            if proc.name() == "povray" and is_alive(proc) and proc.cpu_times().user > 0.2:
                return True
        except psutil.Error:
            continue
    return False


def _linux_modes() -> list[str]:
    """The helper modes this machine can run: ``setpriv`` is the Linux default where util-linux has it."""
    modes = ["exec", "watch"]
    if sys.platform.startswith("linux"):
        modes.insert(0, "setpriv")
    return modes


@pytest.fixture
def setpriv_keeper() -> DieWithAgent:
    if not sys.platform.startswith("linux"):
        pytest.skip("setpriv is Linux's")
    require_tool("setpriv")
    return DieWithAgent("setpriv")


@pytest.mark.povray
@pytest.mark.parametrize("mode", _linux_modes())
def test_kill_9_of_the_parent_mid_frame_leaves_no_renderer_within_2_s(tmp_path: Path, mode: str) -> None:
    argv = _povray_argv(tmp_path)
    agent, child_pid = _start_fake_agent(mode, argv, tmp_path / "scenes")
    try:
        wait_for(lambda: _povray_running(child_pid), 20, "POV-Ray to be rendering")
        tree = _render_tree(child_pid)
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=5)
        wait_for(lambda: not any(is_alive(p) for p in tree), 2.0, "the render tree to die with its parent")
    finally:
        agent.kill()
        for proc in _render_tree(child_pid):
            proc.kill()


def test_exec_mode_runs_the_renderer_in_place_with_its_exit_code(tmp_path: Path) -> None:
    """No extra process in exec mode: the helper becomes the renderer, exit code and output included."""
    keeper = DieWithAgent("exec")
    argv = keeper.wrap([sys.executable, "-c", "import os,sys; print(os.getpid()); sys.exit(7)"])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 7
    # The renderer's pid is the helper's pid: it was exec'd, not forked.
    assert proc.stdout.strip().isdigit()


def test_watch_mode_passes_the_renderers_exit_code_on(tmp_path: Path) -> None:
    keeper = DieWithAgent("watch")
    proc = subprocess.run(keeper.wrap([sys.executable, "-c", "import sys; print('hi'); sys.exit(3)"]),
                          capture_output=True, text=True, timeout=20)
    assert (proc.returncode, proc.stdout.strip()) == (3, "hi")


def test_setpriv_is_the_linux_default_and_runs_the_renderer_in_place(setpriv_keeper: DieWithAgent) -> None:
    """No extra process: setpriv and sh exec into the renderer, which keeps the exit code, output and signal."""
    assert DieWithAgent().mode == "setpriv"
    code = "import os,sys; print(os.getpid()); sys.exit(7)"
    proc = subprocess.Popen(setpriv_keeper.wrap([sys.executable, "-c", code]), stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 7
    assert out.strip() == str(proc.pid)  # exec'd all the way down, not forked


def test_setpriv_mode_asks_for_the_parent_death_signal(setpriv_keeper: DieWithAgent) -> None:
    # /proc/<pid>/status has no pdeathsig line; the renderer reads its own with prctl(PR_GET_PDEATHSIG).
    code = ("import ctypes,signal; v=ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(v), 0, 0, 0); "
            "print(v.value == signal.SIGKILL)")
    proc = subprocess.run(setpriv_keeper.wrap([sys.executable, "-c", code]), capture_output=True, text=True, timeout=20)
    assert proc.stdout.strip() == "True", proc.stderr


def test_setpriv_mode_starts_nothing_when_the_parent_is_not_the_agent(setpriv_keeper: DieWithAgent,
                                                                       tmp_path: Path) -> None:
    """The race of fork and prctl, as in pdeath_start: a parent other than the agent means no render."""
    marker = tmp_path / "started"
    not_our_parent = os.getpid() + 1 if os.getpid() + 1 != os.getppid() else os.getpid() + 2
    argv = setpriv_keeper.wrap_for(not_our_parent, [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert proc.returncode == pdeath_start.EXIT_AGENT_GONE
    assert not marker.exists()


def test_setpriv_mode_passes_arguments_as_data(setpriv_keeper: DieWithAgent, tmp_path: Path) -> None:
    """Arguments with spaces, quotes and shell syntax reach the renderer untouched (never a shell string)."""
    tricky = ["a b", "'; touch x #", "$(id)", "*", "-n", ""]
    proc = subprocess.run(setpriv_keeper.wrap([sys.executable, "-c", "import sys,json; print(json.dumps(sys.argv[1:]))",
                                               *tricky]), capture_output=True, text=True, timeout=20, cwd=tmp_path)
    import json

    assert json.loads(proc.stdout) == tricky and not (tmp_path / "x").exists()


@pytest.mark.parametrize("mode", ["exec", "watch"])
def test_a_parent_that_died_before_the_helper_started_means_no_render(tmp_path: Path, mode: str) -> None:
    """The race: the agent dies between fork and prctl. The helper sees a different parent and starts nothing."""
    marker = tmp_path / "started"
    not_our_parent = os.getpid() + 1 if os.getpid() + 1 != os.getppid() else os.getpid() + 2
    argv = [sys.executable, "-I", "-S", str(pdeath_start.__file__), mode, str(not_our_parent), "--",
            sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert proc.returncode == pdeath_start.EXIT_AGENT_GONE
    assert not marker.exists()


def test_a_missing_renderer_is_one_line_and_exit_127(tmp_path: Path) -> None:
    keeper = DieWithAgent("exec")
    proc = subprocess.run(keeper.wrap([str(tmp_path / "no-such-renderer")]), capture_output=True, text=True, timeout=20)
    assert proc.returncode == pdeath_start.EXIT_CANNOT_START
    assert proc.stderr.count("\n") == 1 and "cannot start" in proc.stderr


def test_bad_helper_arguments_are_refused_with_usage() -> None:
    proc = subprocess.run([sys.executable, str(pdeath_start.__file__), "fork", "12", "--", "x"],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == pdeath_start.EXIT_USAGE and "usage:" in proc.stderr


def test_windows_job_structures_have_the_documented_64_bit_sizes() -> None:
    """The Job Object code cannot run here; its ctypes layouts can be checked against the Win32 docs."""
    from envy.platform import windows_job

    if ctypes.sizeof(ctypes.c_void_p) != 8:
        pytest.skip("sizes below are for 64-bit")
    assert ctypes.sizeof(windows_job.IO_COUNTERS) == 48
    assert ctypes.sizeof(windows_job.JOBOBJECT_BASIC_LIMIT_INFORMATION) == 64
    assert ctypes.sizeof(windows_job.JOBOBJECT_EXTENDED_LIMIT_INFORMATION) == 144


def test_a_render_started_from_a_thread_that_ends_keeps_running(tmp_path: Path) -> None:
    """Linux sends the parent-death signal when the forking *thread* exits: popen forks from one long-lived thread."""
    import threading

    keeper = DieWithAgent()
    started: list[subprocess.Popen[bytes]] = []
    marker = tmp_path / "finished"
    code = f"import time; time.sleep(1.5); open({str(marker)!r}, 'w').close()"
    thread = threading.Thread(target=lambda: started.append(keeper.popen([sys.executable, "-c", code])))
    thread.start()
    thread.join()  # the thread that asked for the render is gone
    try:
        assert started[0].wait(timeout=30) == 0 and marker.exists()
    finally:
        keeper.close()


def test_popen_raises_what_popen_raises(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "a-file.txt"
    not_a_folder.write_text("x")
    keeper = DieWithAgent()
    try:
        with pytest.raises(NotADirectoryError):
            keeper.popen([sys.executable, "-c", "pass"], cwd=str(not_a_folder))
    finally:
        keeper.close()
