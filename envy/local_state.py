"""An agent's private state on this machine: one folder per share and host, and its lock.

The folder is ``LocalDirs.agent_state(host, share)`` (envy/platform/dirs.py).
Everything an agent keeps locally (the single-agent lock, the command
ledger, the render mode to resume, the record of its children, its local
log) lives in ``<local state>/agents/<host>-<share key>/``. The share key is
a short hash of the share's path as this machine spells it, so two agents of
one host name on two shares keep apart, and a share mounted under another
path or re-created starts afresh instead of resuming another share's render
mode. (The path, not the sentinel, because the folder is needed before the
share is mounted: an agent waits for an unmounted share.) ``share_id`` reads
the sentinel's id once the share is there, for state that must also survive
only on the same share (render mode).

The lock: the running agent records its pid, process start time and share;
a second agent for the same share and host refuses to start while that
process lives (the start time guards against a reused pid) and says which
share and pid hold it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_mod
from pathlib import Path

import psutil

from envy.platform.dirs import share_key
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

__all__ = ["LOCK_FILE", "AlreadyRunning", "claim_agent", "share_id", "share_key"]

LOCK_FILE = "agent.pid"
_SENTINEL_MAX_BYTES = 4096
_CREATE_TIME_TOLERANCE_S = 1.0


class AlreadyRunning(RuntimeError):
    """Another live agent holds this share and host on this machine."""


def share_id(layout: ShareLayout, fs: ShareFS) -> str | None:
    """The id in the share's sentinel (new shares have one), else a hash of the sentinel; None if unreadable."""
    try:
        st = fs.stat(layout.sentinel)
        if not stat_mod.S_ISREG(st.st_mode) or st.st_size > _SENTINEL_MAX_BYTES:
            return None  # a FIFO would block the reader; a huge file is not ours
        data = fs.read_bytes(layout.sentinel)[:_SENTINEL_MAX_BYTES]
    except OSError:
        return None
    try:
        parsed = json.loads(data)
        if isinstance(parsed, dict) and isinstance(parsed.get("id"), str) and 0 < len(parsed["id"]) <= 64:
            return str(parsed["id"])
    except ValueError:
        pass
    return hashlib.sha256(data).hexdigest()[:16]


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def claim_agent(state_dir: Path, host: str, share: str | os.PathLike[str]) -> Path:
    """Record this process as the agent for ``host`` on ``share``; raise AlreadyRunning if another lives."""
    path = Path(state_dir) / LOCK_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pid, created = int(data["pid"]), float(data["create_time"])
    except (OSError, ValueError, KeyError, TypeError):
        pid, created = 0, 0.0
    if pid and pid != os.getpid():
        now_created = _create_time(pid)
        if now_created is not None and abs(now_created - created) < _CREATE_TIME_TOLERANCE_S:
            raise AlreadyRunning(
                f"an agent for host {host} on share {os.fspath(share)} is already running on this machine "
                f"(pid {pid}); stop it first, or give this one another --host or --share"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{LOCK_FILE}.{os.getpid()}")
    record = {"pid": os.getpid(), "create_time": _create_time(os.getpid()), "host": host, "share": os.fspath(share)}
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, path)
    return path
