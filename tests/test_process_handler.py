"""ProcessHandler with real child processes (Python scripts standing in for renderers).

Every timing-dependent check waits on a condition with a deadline.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from envy.agent.processes import RECORD_NAME, ProcessHandler
from envy.platform.processes import kill_tree
from envy.waiting import wait_for

PY = sys.executable
DEADLINE_S = 15.0


def gone(pid: int) -> bool:
    """Exited: no such pid, or a zombie nobody has reaped yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def script(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


SLEEPER = script("import time; print('sleeping', flush=True); time.sleep(60)")

# Spawns a grandchild that sleeps (sharing our output), prints its pid, then sleeps or exits.
PARENT_OF_SLEEPER = """
    import subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print("grandchild", grandchild.pid, flush=True)
    if sys.argv[1] == "stay":
        time.sleep(60)
"""


class Output:
    """Collects on_output chunks from the reader thread."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self._lock:
            self.chunks.append(text)

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self.chunks)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def handler(state_dir: Path) -> Iterator[ProcessHandler]:
    with ProcessHandler(state_dir) as h:
        yield h


def find_grandchild(text: str) -> int | None:
    """The pid from the line PARENT_OF_SLEEPER prints."""
    found = re.search(r"^grandchild (\d+)\r?$", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def grandchild_pid(output: Output) -> int:
    wait_for(lambda: find_grandchild(output.text) is not None, DEADLINE_S, "the grandchild's pid")
    pid = find_grandchild(output.text)
    assert pid is not None
    return pid


def recorded_children(state_dir: Path) -> list[dict[str, object]]:
    return json.loads((state_dir / RECORD_NAME).read_text("utf-8"))["children"]


def test_output_streams_to_log_and_callback_including_carriage_returns(handler: ProcessHandler, tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = f"""
        import os, sys, time
        sys.stdout.write("progress 10%\\r"); sys.stdout.flush()
        sys.stderr.write("a warning\\n"); sys.stderr.flush()
        while not os.path.exists({str(go)!r}):
            time.sleep(0.02)
        sys.stdout.write("progress 100%\\r"); sys.stdout.flush()
        print("done")
    """
    output = Output()
    log_path = tmp_path / "frame.log"
    child = handler.start("render", script(code), log_path, on_output=output)

    # Both arrive while the child is still running (it waits for us).
    wait_for(lambda: "progress 10%\r" in output.text and "a warning\n" in output.text, DEADLINE_S, "streamed output")
    # (read bytes: text mode would turn the ``\r`` into a newline)
    wait_for(lambda: b"progress 10%\r" in log_path.read_bytes(), DEADLINE_S, "the progress update in the log")
    assert child.running

    go.touch()
    result = child.wait(DEADLINE_S)
    assert result is not None and result.returncode == 0 and result.killed_reason is None
    assert output.text.endswith("progress 100%\rdone\n")
    lines = log_path.read_text("utf-8").splitlines()
    assert "started pid" in lines[0] and '"-c"' in lines[0] and PY.replace("\\", "\\\\") in lines[0]
    assert b"progress 10%\r" in log_path.read_bytes() and b"a warning\nprogress 100%\rdone\n" in log_path.read_bytes()
    assert lines[-1].startswith("=== envy: exit code 0 after ")


def test_exit_code_and_duration_are_captured(handler: ProcessHandler, tmp_path: Path) -> None:
    child = handler.start("fail", script("import sys; print('bad scene'); sys.exit(3)"), tmp_path / "fail.log")
    result = child.wait(DEADLINE_S)
    assert result is not None
    assert result.returncode == 3 and result.killed_reason is None and result.duration_s > 0
    assert result.log_path == tmp_path / "fail.log"
    assert child.poll() == result and not child.running
    assert "exit code 3" in (tmp_path / "fail.log").read_text("utf-8")
    assert handler.children() == []


def test_stop_kills_child_and_grandchild(handler: ProcessHandler, tmp_path: Path) -> None:
    output = Output()
    child = handler.start("tree", script(PARENT_OF_SLEEPER) + ["stay"], tmp_path / "tree.log", on_output=output)
    grandchild = grandchild_pid(output)
    assert not gone(grandchild)

    child.stop()

    result = child.poll()
    assert result is not None and result.killed_reason == "stopped"
    assert result.returncode != 0
    wait_for(lambda: gone(child.pid) and gone(grandchild), DEADLINE_S, "child and grandchild to exit")
    assert "(killed: stopped)" in (tmp_path / "tree.log").read_text("utf-8")


def test_grandchild_left_running_after_the_child_exits_is_killed(handler: ProcessHandler, tmp_path: Path) -> None:
    output = Output()
    child = handler.start("leaver", script(PARENT_OF_SLEEPER) + ["exit"], tmp_path / "leaver.log", on_output=output)
    grandchild = grandchild_pid(output)
    result = child.wait(DEADLINE_S)
    assert result is not None and result.returncode == 0
    wait_for(lambda: gone(grandchild), DEADLINE_S, "the left-over grandchild to be killed")


def test_memory_cap_kills_the_tree_and_says_why(handler: ProcessHandler, tmp_path: Path) -> None:
    hog = script("import time; data = b'x' * (300 * 1024 * 1024); print('allocated', flush=True); time.sleep(60)")
    child = handler.start("hog", hog, tmp_path / "hog.log", memory_limit_mb=100)
    result = child.wait(DEADLINE_S)
    assert result is not None, "the memory cap did not stop the child"
    assert result.killed_reason is not None
    assert result.killed_reason.startswith("memory limit 100 MB exceeded (RSS ")
    assert result.returncode != 0
    assert "memory limit 100 MB exceeded" in (tmp_path / "hog.log").read_text("utf-8")


def test_children_under_the_cap_are_left_alone(handler: ProcessHandler, tmp_path: Path) -> None:
    child = handler.start("small", script("print('ok')"), tmp_path / "small.log", memory_limit_mb=1000)
    result = child.wait(DEADLINE_S)
    assert result is not None and result.returncode == 0 and result.killed_reason is None


def test_children_get_low_priority(handler: ProcessHandler, tmp_path: Path) -> None:
    child = handler.start("nice", SLEEPER, tmp_path / "nice.log")
    if sys.platform == "win32":
        assert psutil.Process(child.pid).nice() == psutil.BELOW_NORMAL_PRIORITY_CLASS  # type: ignore[attr-defined]
    else:
        assert psutil.Process(child.pid).nice() >= 10
    child.stop()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX niceness")
def test_normal_priority_when_asked(state_dir: Path, tmp_path: Path) -> None:
    with ProcessHandler(state_dir, low_priority=False) as h:
        child = h.start("normal", SLEEPER, tmp_path / "normal.log")
        assert psutil.Process(child.pid).nice() == psutil.Process().nice()


def test_live_children_are_recorded_and_removed_when_done(
    handler: ProcessHandler, state_dir: Path, tmp_path: Path
) -> None:
    child = handler.start("rec", SLEEPER, tmp_path / "rec.log")
    [entry] = recorded_children(state_dir)
    assert entry["pid"] == child.pid and entry["name"] == "rec"
    assert entry["create_time"] == pytest.approx(psutil.Process(child.pid).create_time())
    assert handler.children() == [child]
    handler.stop_all()
    assert handler.children() == [] and recorded_children(state_dir) == []


def test_kill_orphans_after_the_agent_was_dropped(state_dir: Path, tmp_path: Path) -> None:
    first = ProcessHandler(state_dir)
    child = first.start("orphan", SLEEPER, tmp_path / "orphan.log")
    first.close()  # the agent "dies": nobody stops the child

    second = ProcessHandler(state_dir)
    try:
        # Starting work first must not lose the record of the orphan.
        own = second.start("own", SLEEPER, tmp_path / "own.log")
        assert {e["pid"] for e in recorded_children(state_dir)} == {child.pid, own.pid}

        assert second.kill_orphans() == [child.pid]
        wait_for(lambda: gone(child.pid), DEADLINE_S, "the orphan to exit")
        assert own.running
        assert [e["pid"] for e in recorded_children(state_dir)] == [own.pid]
        assert second.kill_orphans() == []
    finally:
        second.stop_all()
        second.close()


AGENT = """
    import sys, time
    from pathlib import Path
    from envy.agent.processes import ProcessHandler
    # Not tied to the agent's life: this tests the orphan sweep itself, the net for what the
    # parent-death signal does not reach (grandchildren, macOS without the watcher).
    handler = ProcessHandler(Path(sys.argv[1]), tie_to_agent=False)
    child = handler.start("render", [sys.executable, "-c", sys.argv[3], "stay"], Path(sys.argv[2]))
    print(child.pid, flush=True)
    time.sleep(60)
"""


def test_kill_orphans_after_the_agent_was_killed(state_dir: Path, tmp_path: Path) -> None:
    """A real agent process starts a child (with a grandchild) and is killed -9."""
    agent = subprocess.Popen(
        script(AGENT) + [str(state_dir), str(tmp_path / "render.log"), textwrap.dedent(PARENT_OF_SLEEPER)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert agent.stdout is not None
        child_pid = int(agent.stdout.readline())
        log_path = tmp_path / "render.log"
        wait_for(
            lambda: find_grandchild(log_path.read_text("utf-8")) is not None,
            DEADLINE_S,
            "the grandchild's pid in the log",
        )
        grandchild = find_grandchild(log_path.read_text("utf-8"))
        assert grandchild is not None

        # While that agent lives, its children are not orphans.
        with ProcessHandler(state_dir) as other:
            assert other.kill_orphans() == []
        assert not gone(child_pid)

        agent.kill()
        agent.wait(DEADLINE_S)
        assert not gone(child_pid) and not gone(grandchild)

        with ProcessHandler(state_dir) as next_run:
            killed = next_run.kill_orphans()
        assert child_pid in killed and grandchild in killed
        wait_for(lambda: gone(child_pid) and gone(grandchild), DEADLINE_S, "orphan and its child to exit")
        assert recorded_children(state_dir) == []
    finally:
        agent.kill()
        agent.wait(DEADLINE_S)
        assert agent.stdout is not None
        agent.stdout.close()
        for pid in (locals().get("child_pid"), locals().get("grandchild")):
            if isinstance(pid, int) and not gone(pid):
                kill_tree(pid)


def test_kill_orphans_spares_a_reused_pid(state_dir: Path, tmp_path: Path) -> None:
    """A recorded pid now held by a process created at another time is not ours."""
    first = ProcessHandler(state_dir)
    child = first.start("innocent", SLEEPER, tmp_path / "innocent.log")
    first.close()
    record = json.loads((state_dir / RECORD_NAME).read_text("utf-8"))
    record["children"][0]["create_time"] -= 1000.0  # as if an earlier process had held this pid
    (state_dir / RECORD_NAME).write_text(json.dumps(record), "utf-8")

    second = ProcessHandler(state_dir)
    try:
        assert second.kill_orphans() == []
        assert child.running and not gone(child.pid)
        assert recorded_children(state_dir) == []
    finally:
        second.close()
        child.stop()


def test_unwritable_log_keeps_the_child_running(
    handler: ProcessHandler, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    output = Output()
    caplog.set_level(logging.WARNING, logger="envy.agent.processes")
    child = handler.start("nolog", script("print('still rendered')"), tmp_path / "missing" / "x.log", on_output=output)
    result = child.wait(DEADLINE_S)
    assert result is not None and result.returncode == 0
    assert output.text == "still rendered\n".replace("\n", "\r\n" if sys.platform == "win32" else "\n")
    assert "without a log" in caplog.text
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full to fail writes for real")
def test_log_write_failure_keeps_the_child_running(
    handler: ProcessHandler, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """/dev/full accepts the open and fails every write with ENOSPC, like a full share."""
    output = Output()
    caplog.set_level(logging.WARNING, logger="envy.agent.processes")
    child = handler.start("full", script("print('line one'); print('line two')"), Path("/dev/full"), on_output=output)
    result = child.wait(DEADLINE_S)
    assert result is not None and result.returncode == 0
    assert output.text == "line one\nline two\n"
    assert "without a log" in caplog.text


def test_argv_must_be_a_list(handler: ProcessHandler, tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        handler.start("shell", "echo hi", tmp_path / "shell.log")


def test_a_missing_program_raises_and_is_logged(handler: ProcessHandler, tmp_path: Path) -> None:
    with pytest.raises(OSError):
        handler.start("missing", [str(tmp_path / "no-such-renderer")], tmp_path / "missing.log")
    assert "could not start" in (tmp_path / "missing.log").read_text("utf-8")
    assert handler.children() == []


def test_close_stops_the_monitor(state_dir: Path) -> None:
    handler = ProcessHandler(state_dir)
    monitor = handler._monitor  # this handler's own thread: other tests may have handlers of their own
    assert monitor.is_alive()
    handler.close()
    assert not monitor.is_alive()
    with pytest.raises(RuntimeError):
        handler.start("late", SLEEPER, state_dir / "late.log")


def test_the_monitors_cheap_look_finds_the_same_tree_as_the_full_walk(tmp_path: Path) -> None:
    """watched_tree (Linux: /proc children files) against collect_tree (psutil's walk of every process):
    children, a grandchild, and one orphaned into the child's process group."""
    from envy.platform.processes import collect_tree, watched_tree

    ready = tmp_path / "ready"
    script = (f"sleep 60 & (sleep 60; true) & (sh -c 'sleep 60 & exit 0') ; touch {ready}; wait")
    proc = subprocess.Popen(["/bin/bash", "-c", script], start_new_session=True)
    try:
        wait_for(ready.exists, 20, "the tree to be started")
        created = psutil.Process(proc.pid).create_time()
        full = {p.pid for p in collect_tree(proc.pid, create_time=created)}
        assert len(full) >= 4  # bash, two sleeps and the subshell's sleep, plus the orphan in the group
        assert {p.pid for p in watched_tree(proc.pid, create_time=created)} == full
        assert watched_tree(proc.pid, create_time=created + 100) == []  # a reused pid is a stranger's
    finally:
        kill_tree(proc.pid)
        proc.wait(timeout=10)
