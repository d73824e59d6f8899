"""Renders die with the agent, even when the agent is killed hard (kill -9, a crash, Task Manager).

A clean stop kills the render trees itself (``envy.platform.processes``);
this covers the agent dying without running any code. Each OS has its own way:

- **Linux**: the renderer is started through ``pdeath_start.py exec``, which
  asks the kernel for SIGKILL on the agent's death (``PR_SET_PDEATHSIG``) and
  then execs the renderer: no extra process. The signal reaches the renderer
  itself; processes the renderer started in turn are left to the orphan sweep
  at the next agent start (they stay in the render's process group).
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
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

START_HELPER = Path(__file__).with_name("pdeath_start.py")


def helper_mode() -> str | None:
    """``exec`` (Linux), ``watch`` (other POSIX), or None (Windows: a Job Object instead)."""
    if sys.platform == "win32":
        return None
    return "exec" if sys.platform.startswith("linux") else "watch"


class DieWithAgent:
    """Makes the children this process starts die when it dies. One per agent; thread-safe.

    Call ``wrap`` on the argv before starting the child and ``adopt`` with its
    pid right after. ``mode`` overrides the OS's choice (tests use ``watch`` on Linux).
    """

    def __init__(self, mode: str | None = "auto") -> None:
        self._mode = helper_mode() if mode == "auto" else mode
        self._job: object | None = None
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
        args = [os.fspath(a) for a in argv]
        if self._mode is None:
            return args
        # -I: ignore PYTHON* variables and the user's site; -S: no site import (fast start).
        return [sys.executable, "-I", "-S", str(START_HELPER), self._mode, str(os.getpid()), "--", *args]

    def adopt(self, pid: int) -> None:
        """Windows: put the started child into the kill-on-close job. Elsewhere nothing to do."""
        if self._job is None:
            return
        try:
            self._job.assign(pid)  # type: ignore[attr-defined]
        except OSError as exc:
            log.warning("pid %s will not die with the agent if it is killed: %s", pid, exc)

    def close(self) -> None:
        """Closing the job kills what is still in it: call only once the renders are stopped."""
        if self._job is not None:
            self._job.close()  # type: ignore[attr-defined]
            self._job = None
