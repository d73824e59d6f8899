"""The ping/status file each agent writes about itself, and reading all of them.

One file per agent (``status/<host>.json``), written only by that agent, at
the heartbeat rate and no more often. ``counter`` goes up by one each beat
and ``nonce`` is new at each agent start: observers judge liveness by seeing
the counter change (see liveness.py), never by comparing times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from envy.share.atomic import atomic_write_json, read_json
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.share.names import is_junk
from envy.share.validate import (
    INT,
    LIST,
    NUMBER,
    OPT_NUMBER,
    OPT_TEXT,
    TEXT,
    TEXT_LIST,
    check_fields,
)

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
class RecentFrame:
    """A frame this agent finished lately and how long it took: the web monitor's render time
    without reading the frame's log (issue 12: no more share reads than the monitor)."""

    job: str
    frame: str
    seconds: float


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
    recent: list[RecentFrame] = field(default_factory=list)  # the last frames done, newest last
    # The share protocols this agent's build speaks, [oldest, newest] (envy/app/protocol.py); empty
    # in files of builds before it, which speak protocol 1. `envy app protocol N` checks them.
    protocols: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "status file") -> AgentStatus:
        """Validate field by field (the file is someone else's writing): ValueError naming the bad field."""
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("host"), str)
            or not isinstance(data.get("nonce"), str)
        ):
            raise ValueError("not an Envy status file (needs 'host' and 'nonce')")
        check_fields(data, _STATUS_FIELDS, where)
        if not data["host"].strip() or len(data["host"]) > 255 or len(data["nonce"]) > 64:
            raise ValueError(f"{where}: 'host' must be a host name and 'nonce' at most 64 characters")
        if data.get("counter", 0) < 0:
            raise ValueError(f"{where}: 'counter' must not be negative")
        workers = data.get("workers") or []
        if len(workers) > MAX_WORKERS:
            raise ValueError(f"{where}: more than {MAX_WORKERS} workers")
        protocols = data.get("protocols") or []
        if protocols and (len(protocols) != 2 or not all(isinstance(p, int) and not isinstance(p, bool)
                                                         and 1 <= p <= 10**6 for p in protocols)):
            raise ValueError(f"{where}: 'protocols' must be [oldest, newest], two whole numbers from 1")
        recent = data.get("recent") or []
        if len(recent) > MAX_RECENT:
            raise ValueError(f"{where}: more than {MAX_RECENT} recent frames")
        values = {k: v for k, v in data.items() if k in _STATUS_FIELDS and k not in ("workers", "recent")}
        status = cls(host=data["host"], nonce=data["nonce"], **values)
        status.recent = []
        for r in recent:
            if not isinstance(r, dict) or set(r) != set(_RECENT_FIELDS):
                raise ValueError(f"{where}: each recent frame must be an object of {', '.join(_RECENT_FIELDS)}")
            check_fields(r, _RECENT_FIELDS, f"{where} (recent)")
            if len(r["job"]) > 255 or len(r["frame"]) > 255 or not 0 <= r["seconds"] < 1e9:
                raise ValueError(f"{where}: a recent frame's names are at most 255 characters, its seconds 0 or more")
            status.recent.append(RecentFrame(r["job"], r["frame"], float(r["seconds"])))
        status.workers = []
        for w in workers:
            if isinstance(w, dict) and isinstance(w.get("index"), int):
                check_fields(w, _WORKER_FIELDS, f"{where} (worker)")
                status.workers.append(WorkerStatus(**{k: v for k, v in w.items() if k in _WORKER_FIELDS}))
        return status


MAX_WORKERS = 256
MAX_RECENT = 64
_STATUS_FIELDS = {
    "counter": INT, "ip": TEXT, "user": TEXT, "pid": INT, "version": TEXT, "os": TEXT, "state": TEXT,
    "work": TEXT, "message": TEXT, "heartbeat": NUMBER, "poll_interval": NUMBER, "workers": LIST,
    "locked_reason": TEXT, "render_jobs": TEXT_LIST, "done_frames": INT, "started": TEXT, "recent": LIST,
    "protocols": LIST,
}
_RECENT_FIELDS = {"job": TEXT, "frame": TEXT, "seconds": NUMBER}
_WORKER_FIELDS = {
    "index": INT, "job": OPT_TEXT, "frame": OPT_TEXT, "percent": OPT_NUMBER, "started": OPT_NUMBER,
    "elapsed_s": OPT_NUMBER,
}


def write_status(layout: ShareLayout, status: AgentStatus, fs: ShareFS,
                 seal: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
    """``seal`` (signed mode, envy/protocol/status_seal.py) adds the farm key's ``sig``."""
    data = status.to_json()
    atomic_write_json(layout.status_file(status.host), seal(data) if seal is not None else data, fs)


def read_status(layout: ShareLayout, host: str, fs: ShareFS) -> AgentStatus:
    """One agent's status, bounded and validated: ValueError for a bad file, OSError as the share does."""
    path = layout.status_file(host)
    return AgentStatus.from_json(read_json(path, fs, "status"), f"status file {path.name}")


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
            statuses.append(AgentStatus.from_json(read_json(path, fs, "status"), f"status file {name}"))
        except FileNotFoundError:
            continue  # replaced or removed between listing and reading
        except (OSError, ValueError, TypeError) as exc:
            warnings.append(f"skipped status file {name}: {exc}")
    return statuses, warnings
