"""An agent never dies of a MemoryError or an unexpected exception in a loop (issue 9, Must-hold 9).

A ``MemoryError`` is an ``Exception`` but not an ``OSError``: a loop that
catches only the share's errors used to die of one (a 2 GB instruction file
killed the agent with its status still "idle"). Each loop kind gets a
``MemoryError`` and a ``RuntimeError`` (a bug) through its seam: the share
(``ShareFS``) for the polling loop, the heartbeat, the render workers and the
reclaimer; the machine-use reader for NIMBY; the user's own functions for the
command runner; the submitter's settings for the notify outbox; a child's
check for the process monitor. Each time the loop logs it once, goes on, and
the agent answers a command afterwards. In-process agents on a real
temporary share, as in test_faults_seam.py.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from envy.agent.agent import Agent
from envy.agent.build import build_agent
from envy.agent.child import Child
from envy.agent.processes import ProcessHandler
from envy.config import Config
from envy.loop_guard import LoopGuard
from envy.notify.events import JobEvent
from envy.notify.outbox import Outbox
from envy.notify.settings import NotifySettings
from envy.platform.dirs import LocalDirs
from envy.platform.idle import MachineUse
from envy.protocol.sender import InstructionSender
from envy.render.claims import ItemPattern, sort_listing
from envy.render.profiles import load_profiles
from envy.render.submit import SubmitRequest, submit
from envy.share.fs import REAL_FS, ShareFS
from envy.share.layout import INSTRUCTIONS, SENTINEL, ShareLayout, init_share
from farm import wait_for
from test_faults_standin import EXTENSION, StandIn

HOST = "lab1-01"
FAULTS = [MemoryError, RuntimeError]


class FaultFS(ShareFS):
    """The real share, but chosen methods raise ``kind`` for chosen paths a set number of times."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[list] = []  # [method, where, kind, times left, times raised]

    def add(self, method: str, where: Callable[[str], bool], kind: type[Exception], times: int) -> list:
        fault = [method, where, kind, times, 0]
        with self._lock:
            self._faults.append(fault)
        return fault

    def _maybe_raise(self, method: str, path: object) -> None:
        with self._lock:
            for fault in self._faults:
                if fault[0] == method and fault[3] > 0 and fault[1](os.fspath(path)):
                    fault[3] -= 1
                    fault[4] += 1
                    raise fault[2](f"injected into {method} of {path}")


def _faulting(name: str):  # type: ignore[no-untyped-def]
    def method(self, *args):  # type: ignore[no-untyped-def]
        if args and isinstance(args[0], (str, os.PathLike)):
            self._maybe_raise(name, args[0])
        if name in ("rename", "rename_no_replace", "replace") and len(args) > 1:
            self._maybe_raise(name + " to", args[1])
        return getattr(ShareFS, name)(self, *args)
    return method


for _name in ("stat", "listdir", "read_bounded", "read_if_changed", "write_new", "replace", "rename",
              "rename_no_replace", "unlink", "append", "mkdir"):
    setattr(FaultFS, _name, _faulting(_name))


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    init_share(root, "student", fs=REAL_FS)
    return root


class Running:
    """An in-process agent, ``Agent.run()`` on a thread as the entry point runs it."""

    def __init__(self, tmp_path: Path, share: Path, fs: ShareFS, **kw: object) -> None:
        settings = {"poll_interval": 0.05, "poll_jitter": 0.0, "heartbeat": 0.1, "dead_after": 2.0,
                    **kw.pop("settings", {})}  # type: ignore[dict-item]
        dirs = LocalDirs(state=tmp_path / "state", config=tmp_path / "config")
        self.agent: Agent = build_agent(Config().with_values(settings, "test"), ShareLayout(share), HOST, "student",
                                        dirs, fs=fs, log_dir=tmp_path / "logs", **kw)  # type: ignore[arg-type]
        self.share = share
        self.thread = threading.Thread(target=self.agent.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        wait_for(lambda: self.agent.heartbeat.counter > 0, 20, "the agent to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.agent.request_quit(restart=False)
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the agent did not stop"

    def answers(self, text: str) -> None:
        """A later command is run: the agent (and its polling loop) is alive and well."""
        InstructionSender(ShareLayout(self.share), 600, fs=REAL_FS).send([f"* print('{text}')"])
        wait_for(lambda: self.agent.snapshot().message == text, 30, f"the agent to print {text}")
        assert self.thread.is_alive()


def logged_once(caplog: pytest.LogCaptureFixture, what: str, kind: type[Exception]) -> None:
    lines = [r for r in caplog.records if f"{what} failed unexpectedly ({kind.__name__}" in r.getMessage()]
    assert len(lines) == 1, f"{what}: {len(lines)} log lines for a repeated {kind.__name__}, not one"


@pytest.mark.parametrize("kind", FAULTS)
def test_the_polling_loop_survives_and_runs_the_next_command(
        tmp_path: Path, share: Path, kind: type[Exception], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    fs = FaultFS()
    with Running(tmp_path, share, fs) as running:
        fault = fs.add("read_if_changed", lambda p: p.endswith(INSTRUCTIONS), kind, 2)
        running.answers("after the poll failed")
        assert fault[4] == 2
        logged_once(caplog, "the polling loop", kind)


@pytest.mark.parametrize("kind", FAULTS)
def test_waiting_for_the_share_at_start_survives_and_the_agent_starts(
        tmp_path: Path, share: Path, kind: type[Exception], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    fs = FaultFS()
    fault = fs.add("stat", lambda p: p.endswith(SENTINEL), kind, 2)  # the very first look at the share
    with Running(tmp_path, share, fs) as running:
        running.answers("after the start failed")
        assert fault[4] >= 2
        logged_once(caplog, "the polling loop", kind)


@pytest.mark.parametrize("kind", FAULTS)
def test_the_heartbeat_survives_and_beats_again(
        tmp_path: Path, share: Path, kind: type[Exception], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    fs = FaultFS()
    with Running(tmp_path, share, fs) as running:
        fault = fs.add("write_new", lambda p: f"{os.sep}status{os.sep}" in p, kind, 3)
        wait_for(lambda: fault[4] == 3, 20, "the heartbeat's status writes to fail")
        beats = running.agent.heartbeat.counter
        wait_for(lambda: running.agent.heartbeat.counter > beats + 2, 20, "the heartbeat to beat again")
        assert running.agent.heartbeat.is_alive()
        running.answers("after the heartbeat failed")
        logged_once(caplog, "the heartbeat", kind)


@pytest.mark.parametrize("kind", FAULTS)
def test_render_workers_and_the_reclaimer_survive_and_every_frame_is_done_once(
        tmp_path: Path, share: Path, kind: type[Exception], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    standin = StandIn(tmp_path / "standin").install()
    shot = share / "proj" / "shot"
    bases = standin.make_frames(shot, 3, 0.1)
    submit(ShareLayout(share), SubmitRequest(str(shot), output=str(share / "proj" / "out")),
           load_profiles([standin.profile]), fs=REAL_FS)
    fs = FaultFS()
    in_shot = str(shot)
    faults = [
        fs.add("listdir", lambda p: p == in_shot, kind, 3),  # the workers' claims and the reclaimer's scans
        fs.add("stat", lambda p: "envy~tmp~" in p, kind, 1),  # judging a finished render
        fs.add("rename to", lambda p: "~done~" in p, kind, 1),  # marking a frame done
        fs.add("rename to", lambda p: "~retry~" in p, kind, 1),  # failing it (after the stat above)
    ]
    with Running(tmp_path, share, fs, settings={"profiles": [str(standin.profile)], "workers": 2}) as running:
        running.agent.start_render((), {})
        loop = running.agent.render
        assert loop is not None

        def all_done() -> bool:
            listing = sort_listing(os.listdir(shot), ItemPattern([EXTENSION]))
            return sorted(i.base for i in listing.done) == bases
        wait_for(all_done, 60, "every frame to be done")
        assert [f[4] for f in faults] == [3, 1, 1, 1], "a fault was not injected"
        assert all(w.is_alive() for w in loop._workers), "a render worker died"
        assert loop.reclaimer.is_alive(), "the reclaimer died"
        assert set(standin.renders()) == set(bases)
        running.answers("after the render loop failed")


@pytest.mark.parametrize("kind", FAULTS)
def test_the_nimby_watcher_survives_and_keeps_watching(
        tmp_path: Path, share: Path, kind: type[Exception], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    readings: list[int] = []

    class FailingReader:
        def read(self, render_pids: object) -> MachineUse:
            readings.append(1)
            if len(readings) <= 2:
                raise kind("injected into the machine-use reading")
            return MachineUse(None)

    with Running(tmp_path, share, REAL_FS, machine_use=FailingReader(),
                 settings={"when_in_use": "pause"}) as running:
        wait_for(lambda: len(readings) >= 4, 30, "NIMBY to read the machine again after the failures")
        assert running.agent.nimby is not None and running.agent.nimby._thread.is_alive()
        running.answers("after NIMBY failed")
        logged_once(caplog, "the NIMBY check", kind)


@pytest.mark.parametrize("kind", FAULTS)
def test_the_command_runner_survives_a_user_function_that_raises(
        tmp_path: Path, share: Path, kind: type[Exception], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    user_dir = ShareLayout(share).user_dir("student")
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "Envy_Functions.py").write_text(
        f"def boom():\n    raise {kind.__name__}('injected into a user function')\n\n"
        "def hello():\n    return 'still here'\n")
    with Running(tmp_path, share, REAL_FS) as running:
        InstructionSender(ShareLayout(share), 600, fs=REAL_FS).send(["* NV.boom()", "* NV.hello()"])
        wait_for(lambda: any("returned 'still here'" in r.getMessage() for r in caplog.records), 30,
                 "the command runner to run the next function")
        assert running.agent.commands.is_alive()
        assert any(kind.__name__ in r.getMessage() for r in caplog.records)
        running.answers("after a user function failed")


@pytest.mark.parametrize("kind", FAULTS)
def test_the_process_monitor_survives_and_goes_on_watching_children(
        tmp_path: Path, kind: type[Exception], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """No share here: a child's check raising is injected into the monitor's one call."""
    caplog.set_level(logging.INFO, logger="envy")
    checks: list[int] = []
    real_check = Child._check

    def failing_check(self: Child) -> None:
        checks.append(1)
        if len(checks) <= 2:
            raise kind("injected into a child's check")
        real_check(self)

    monkeypatch.setattr(Child, "_check", failing_check)
    with ProcessHandler(tmp_path / "state", tie_to_agent=False) as processes:
        child = processes.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                                tmp_path / "sleeper.log", timeout_s=60)
        wait_for(lambda: len(checks) >= 4, 30, "the monitor to check the child again after the failures")
        assert processes._monitor.is_alive()
        child.stop("test over")
    logged_once(caplog, "the process monitor", kind)


@pytest.mark.parametrize("kind", FAULTS)
def test_the_notify_outbox_survives_and_sends_the_next_event(
        tmp_path: Path, kind: type[Exception], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    asked: list[str] = []

    def settings_for(user: str) -> NotifySettings:
        asked.append(user)
        if len(asked) == 1:
            raise kind("injected into reading the submitter's settings")
        return NotifySettings()

    def event(name: str) -> JobEvent:
        return JobEvent(name, name, "student", HOST, "complete", 1, 0, HOST, 1, "0a0a0a0a", "2026-01-01T00:00:00Z")

    outbox = Outbox(settings_for, "envy@lab", pending_dir=tmp_path / "pending")
    try:
        outbox.send(event("first"))
        outbox.send(event("second"))
        wait_for(lambda: any("job second complete" in r.getMessage() and "no webhook" in r.getMessage()
                             for r in caplog.records), 30, "the outbox to handle the next event")
        assert outbox.is_alive()
    finally:
        outbox.stop()
    logged_once(caplog, "the notify outbox", kind)


def test_the_guard_logs_each_kind_once_and_backs_off_until_a_round_goes_well(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="envy")
    guard = LoopGuard("a loop", logging.getLogger("envy.test"), first=1.0, longest=4.0)

    def fail(kind: type[Exception]) -> float:
        try:
            raise kind("x")
        except Exception as exc:
            return guard.failed(exc)

    assert [fail(MemoryError) for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    fail(RuntimeError)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and errors[0].exc_info is not None, "one line (with its traceback) per kind"
    guard.ok()
    assert fail(MemoryError) == 1.0
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
