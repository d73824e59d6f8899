"""The ping/status file each agent writes about itself, and reading all of them.

One file per agent (``status/<host>.json``), written only by that agent, at
the heartbeat rate and no more often. ``counter`` goes up by one each beat
and ``nonce`` is new at each agent start: observers judge liveness by seeing
the counter change (see liveness.py), never by comparing times.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from envy.share.atomic import atomic_write_json, read_json
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.share.names import is_junk

log = logging.getLogger(__name__)

# States an agent reports. "locked" is set by the lockdown policy; "paused" by NIMBY (someone
# is using the machine, envy/nimby/); "stopped" is the last status, its message says why;
# "too-old" by an agent whose build does not speak the share's protocol (envy/app/entry.py).
STATES = ("starting", "idle", "rendering", "busy", "waiting-for-share", "locked", "paused", "stopping", "stopped",
          "too-old")


@dataclass
class WorkerStatus:
    """One render slot: what it is doing and how far it got."""

    index: int
    job: str | None = None
    frame: str | None = None
    percent: float | None = None
    started: float | None = None  # the agent's own clock: only used for durations it reports itself
    elapsed_s: float | None = None


@dataclass
class AgentStatus:
    host: str
    nonce: str
    counter: int = 0
    ip: str = ""
    user: str = ""
    pid: int = 0
    version: str = ""
    os: str = ""
    state: str = "starting"
    work: str = ""
    message: str = ""  # the last print(...) output or notice
    heartbeat: float = 5.0
    poll_interval: float = 2.0
    workers: list[WorkerStatus] = field(default_factory=list)
    locked_reason: str = ""
    render_jobs: list[str] = field(default_factory=list)
    done_frames: int = 0
    started: str = ""  # ISO time of the agent's start, by its own clock, for people to read

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> AgentStatus:
        if not isinstance(data, dict) or not isinstance(data.get("host"), str) or not isinstance(data.get("nonce"), str):
            raise ValueError("not an Envy status file (needs 'host' and 'nonce')")
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        if not isinstance(values.get("counter", 0), int):
            raise ValueError("'counter' must be an integer")
        workers = values.pop("workers", []) or []
        status = cls(**values)
        worker_fields = set(WorkerStatus.__dataclass_fields__)
        status.workers = [WorkerStatus(**{k: v for k, v in w.items() if k in worker_fields})
                          for w in workers if isinstance(w, dict) and isinstance(w.get("index"), int)]
        return status


def write_status(layout: ShareLayout, status: AgentStatus, fs: ShareFS) -> None:
    atomic_write_json(layout.status_file(status.host), status.to_json(), fs)


def read_statuses(layout: ShareLayout, fs: ShareFS) -> tuple[list[AgentStatus], list[str]]:
    """Every agent's status; corrupt or foreign files become warnings, never errors."""
    statuses: list[AgentStatus] = []
    warnings: list[str] = []
    try:
        names = fs.listdir(layout.status_dir)
    except OSError as exc:
        return [], [f"cannot list {layout.status_dir}: {exc}"]
    for name in sorted(names):
        if is_junk(name) or not name.lower().endswith(".json"):
            continue
        path = layout.status_dir / name
        try:
            statuses.append(AgentStatus.from_json(read_json(path, fs)))
        except FileNotFoundError:
            continue  # replaced or removed between listing and reading
        except (OSError, ValueError, TypeError) as exc:
            warnings.append(f"skipped status file {name}: {exc}")
    return statuses, warnings
