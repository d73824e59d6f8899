"""Renders die with the agent, even when the agent is killed hard (kill -9, a crash, Task Manager).

A clean stop kills the render trees itself (``envy.platform.processes``);
this covers the agent dying without running any code. Each OS has its own way:

- **Linux**: the renderer is started through util-linux's ``setpriv
  --pdeathsig KILL``, which asks the kernel for SIGKILL on the agent's death
  (``PR_SET_PDEATHSIG``) and execs ``/bin/sh``, which checks that its parent
  is still the agent (it may have died between fork and prctl) and execs the
  renderer: no extra process, and about a millisecond of start-up where a
  Python helper took 15 to 30 ms of CPU per frame (benchmarks/dispatch.py).
  Without a ``setpriv`` that knows ``--pdeathsig`` (util-linux before 2.33),
  ``pdeath_start.py exec`` does the same in Python. The signal reaches the
  renderer itself; processes the renderer started in turn are left to the
  orphan sweep at the next agent start (they stay in the render's process group).
- **Windows**: every render is assigned to one Job Object that the agent
  holds open, created with ``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE``. When the
  agent dies, Windows closes its handles, and closing the last handle of the
  job kills every process in it, the renderer's own children included (they
  inherit the job). There is a short window between start and assignment in
  which a child the renderer starts is not yet in the job. Written from the
  Win32 documentation; it cannot run on the Linux CI machine.
- **macOS** has no parent-death signal: ``pdeath_start.py watch`` stays as a
  small supervisor that waits for the agent's exit with kqueue ``NOTE_EXIT``
  and then kills the render's whole process group. If the supervisor itself
  is killed, the orphan sweep at the next agent start is the remaining net.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

START_HELPER = Path(__file__).with_name("pdeath_start.py")


# setpriv execs this with the agent's pid as $0 and the renderer's argv as "$@". dash and bash
# set $PPID from getppid() as they start, which is after setpriv's prctl: a parent other than the
# agent means it died before the signal was asked for, so nothing may start (pdeath_start's exit code).
_PARENT_CHECK = '[ "$PPID" = "$0" ] || exit 125; exec "$@"'


def helper_mode() -> str | None:
    """``setpriv`` or ``exec`` (Linux), ``watch`` (other POSIX), or None (Windows: a Job Object instead)."""
    if sys.platform == "win32":
        return None
    if not sys.platform.startswith("linux"):
        return "watch"
    return "setpriv" if _setpriv_with_pdeathsig() is not None else "exec"


def _setpriv_with_pdeathsig() -> tuple[str, str] | None:
    """The paths of a ``setpriv`` that knows ``--pdeathsig`` (util-linux 2.33 and later) and of ``sh``, or None."""
    import shutil

    setpriv, sh = shutil.which("setpriv"), shutil.which("sh")
    if setpriv is None or sh is None:
        return None
    try:
        usage = subprocess.run([setpriv, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return (setpriv, sh) if "--pdeathsig" in usage else None


class DieWithAgent:
    """Makes the children this process starts die when it dies. One per agent; thread-safe.

    ``popen`` starts a child tied to this process: it wraps the argv, starts
    it from the launcher thread and adopts it. (Or call ``wrap`` before and
    ``adopt`` after starting it yourself.) ``mode`` overrides the OS's choice
    (tests use ``watch`` on Linux).

    The launcher thread exists because Linux sends the parent-death signal
    when the *thread* that forked the child exits, not the process: a render
    started from a worker thread that ends (or a thread started for one NV
    command) would be killed with that thread. One long-lived thread does
    every fork, so the signal comes only when the agent itself dies.
    """

    def __init__(self, mode: str | None = "auto") -> None:
        # setpriv and sh, looked up once (the parent-death signal's fast start on Linux)
        linux = sys.platform.startswith("linux")
        self._setpriv = _setpriv_with_pdeathsig() if mode == "setpriv" or (mode == "auto" and linux) else None
        if mode == "auto":
            mode = "setpriv" if self._setpriv is not None else "exec" if linux else helper_mode()
        elif mode == "setpriv" and self._setpriv is None:
            raise ValueError("no setpriv with --pdeathsig (util-linux 2.33 or later) on this machine")
        self._mode = mode
        self._job: object | None = None
        self._requests: queue.SimpleQueue[tuple[Callable[[], subprocess.Popen[bytes]], Future[Any]] | None] = \
            queue.SimpleQueue()
        self._launcher: threading.Thread | None = None
        self._launcher_lock = threading.Lock()
        if sys.platform == "win32":
            from envy.platform.windows_job import KillOnCloseJob

            try:
                self._job = KillOnCloseJob()
            except OSError as exc:
                log.warning("renders will not die with the agent if it is killed: no Job Object: %s", exc)

    @property
    def mode(self) -> str | None:
        return self._mode

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The command line that starts ``argv`` tied to this process's life."""
        return self.wrap_for(os.getpid(), argv)

    def wrap_for(self, agent_pid: int, argv: Sequence[str]) -> list[str]:
        """The command line that starts ``argv`` tied to the life of ``agent_pid`` (its parent-to-be)."""
        args = [os.fspath(a) for a in argv]
        if self._mode is None:
            return args
        if self._mode == "setpriv" and self._setpriv is not None:
            setpriv, sh = self._setpriv
            return [setpriv, "--pdeathsig", "KILL", "--", sh, "-c", _PARENT_CHECK, str(agent_pid), *args]
        # -I: ignore PYTHON* variables and the user's site; -S: no site import (fast start).
        return [sys.executable, "-I", "-S", str(START_HELPER), self._mode, str(agent_pid), "--", *args]

    def adopt(self, pid: int) -> None:
        """Windows: put the started child into the kill-on-close job. Elsewhere nothing to do."""
        if self._job is None:
            return
        try:
            self._job.assign(pid)  # type: ignore[attr-defined]
        except OSError as exc:
            log.warning("pid %s will not die with the agent if it is killed: %s", pid, exc)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """``subprocess.Popen(wrap(argv), **kwargs)`` from the launcher thread, then ``adopt``; raises as Popen does.

        A program that is missing or not executable raises here, as Popen
        would, rather than surfacing later as the helper's exit code 127.
        """
        if self._mode is not None:
            argv = [_resolve_program(os.fspath(argv[0]), kwargs.get("cwd"), kwargs.get("env")), *argv[1:]]
        args = self.wrap(argv)
        if self._mode in ("exec", "setpriv"):  # the parent-death signal is tied to the forking thread
            done: Future[subprocess.Popen[bytes]] = Future()
            self._requests.put((lambda: subprocess.Popen(args, **kwargs), done))
            self._ensure_launcher()
            child = done.result()
        else:
            child = subprocess.Popen(args, **kwargs)
        self.adopt(child.pid)
        return child

    def _ensure_launcher(self) -> None:
        with self._launcher_lock:
            if self._launcher is None:
                self._launcher = threading.Thread(target=self._launch_loop, name="envy-launcher", daemon=True)
                self._launcher.start()

    def _launch_loop(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            start, done = request
            try:
                done.set_result(start())
            except BaseException as exc:  # handed to the caller, who raises it
                done.set_exception(exc)

    def close(self) -> None:
        """Stop the launcher; closing the job kills what is still in it: call once the renders are stopped."""
        with self._launcher_lock:
            if self._launcher is not None:
                self._requests.put(None)
                self._launcher = None
        if self._job is not None:
            self._job.close()  # type: ignore[attr-defined]
            self._job = None


def _resolve_program(program: str, cwd: object, env: object) -> str:
    """The path ``execvp`` would run for ``program``, or the OSError Popen would raise."""
    import errno
    import shutil

    if os.sep in program or (os.altsep and os.altsep in program):
        folder = os.fspath(cwd) if isinstance(cwd, (str, os.PathLike)) else "."
        path = program if os.path.isabs(program) else os.path.join(folder, program)
        if not os.path.isfile(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", program)
        if not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, "Permission denied", program)
        return os.path.abspath(path)
    search = (env or {}).get("PATH") if isinstance(env, dict) else None
    found = shutil.which(program, path=search if search is not None else os.environ.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", program)
    return found
