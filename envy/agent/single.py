"""One agent per host name per machine.

Two startup scripts, or a double-click on the desktop, must not start two
agents that both run every command. The running agent records its pid and
process start time in its local state folder; a second one refuses to start
while that process is alive (the start time guards against pid reuse).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil


class AlreadyRunning(RuntimeError):
    pass


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def claim_host(state_dir: Path, host: str) -> Path:
    """Record this process as the agent for ``host``; raise AlreadyRunning if another lives."""
    path = state_dir / "agent.pid"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pid, created = int(data["pid"]), float(data["create_time"])
    except (OSError, ValueError, KeyError, TypeError):
        pid, created = 0, 0.0
    if pid and pid != os.getpid():
        now_created = _create_time(pid)
        if now_created is not None and abs(now_created - created) < 1.0:
            raise AlreadyRunning(f"an agent for host {host} is already running on this machine (pid {pid}); stop it first")
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".agent.pid.{os.getpid()}")
    tmp.write_text(json.dumps({"pid": os.getpid(), "create_time": _create_time(os.getpid())}), encoding="utf-8")
    os.replace(tmp, path)
    return path
