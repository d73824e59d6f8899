"""What the web monitor shows, as immutable values and their JSON shapes (published by snapshot.py's poller).

A :class:`Snapshot` is the farm at one poll: a :class:`JobView` per job (its
progress and its grid of items) and one JSON object per host. Pages get these
shapes and nothing else; the share is read only by the poller.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from envy.protocol.status import AgentStatus
from envy.render.claims import ItemName, frame_number
from envy.render.dependencies import DependencyState, shown_state
from envy.render.job_state import JobProgress
from envy.render.jobs import Job
from envy_io.agents import SUSPECT, AgentView, idle_in_render_mode


@dataclass(frozen=True)
class JobView:
    job: Job
    progress: JobProgress
    output: str
    error: str
    items: tuple[dict[str, Any], ...]  # the grid: one entry per item
    items_version: int  # changes whenever ``items`` does

    def to_json(self) -> dict[str, Any]:
        j = self.job
        return {
            "id": j.id,
            "name": j.name,
            "user": j.created_by,
            "renderer": j.renderer,
            "priority": j.priority,
            "kind": j.kind,
            "job_state": j.state,
            "archived": j.archived,
            "source": j.source,
            "output": self.output,
            "created_at": j.created_at,
            "error": self.error,
            "items_version": self.items_version,
            **self.progress.to_json(),
        }


@dataclass(frozen=True)
class Snapshot:
    version: int
    taken_at: float  # wall clock, for the page's "updated" line
    share: str
    jobs: tuple[JobView, ...]
    hosts: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...]

    def job(self, job_id: str) -> JobView | None:
        return next((v for v in self.jobs if v.job.id == job_id), None)

    def summary_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "taken_at": self.taken_at,
            "share": self.share,
            "jobs": [v.to_json() for v in self.jobs],
            "hosts": list(self.hosts),
            "warnings": list(self.warnings),
        }

    def detail_json(self, job_id: str) -> dict[str, Any] | None:
        view = self.job(job_id)
        if view is None:
            return None
        return {**view.to_json(), "items": list(view.items)}


def with_dependency_notes(views: tuple[JobView, ...]) -> tuple[JobView, ...]:
    """An active job that waits for others says so, as ``envy-io jobs`` does: ``waiting for X``
    or ``held: X failed`` (envy/render/dependencies.py), from the states of this same snapshot."""
    states: dict[str, DependencyState] = {v.job.id: (v.job.name, v.progress.state) for v in views}
    return tuple(
        dataclasses.replace(v, progress=dataclasses.replace(v.progress, state=shown_state(v.job, v.progress.state,
                                                                                          states)))
        for v in views
    )


def host_state(view: AgentView, dead_after: float) -> str:
    """What the hosts page says an agent is doing, in the words of issue 12 §3.

    An agent we have not yet watched change is ``checking`` for at most
    ``dead_after`` (ENGINEERING §1.5: a fresh observer's grace), then ``stale``.
    """
    status = view.status
    if view.verdict == SUSPECT:
        return "suspect"  # its status changed in a way beats cannot: someone else writes it
    if status.state == "stopping" and not view.alive:
        return "stopped"
    if not view.alive:
        return "checking" if view.silent_s is not None and view.silent_s < dead_after else "stale"
    if idle_in_render_mode(status):
        return "idle"  # render mode on, nothing to claim now; "work" says why (as envy-io status does)
    if status.state == "busy":
        return "rendering"
    if status.state == "waiting-for-share":
        return "waiting for the share"
    return status.state or "unknown"


def host_json(view: AgentView, dead_after: float) -> dict[str, Any]:
    s: AgentStatus = view.status
    return {
        "host": s.host,
        "state": host_state(view, dead_after),
        "agent_state": s.state,
        "alive": view.alive,
        "silent_s": None if view.silent_s is None else round(view.silent_s, 1),
        "version": s.version,
        "ip": s.ip,
        "user": s.user,
        "os": s.os,
        "locked_reason": s.locked_reason,
        "message": s.message[:200],
        "work": s.work[:200],
        "done_frames": s.done_frames,
        "workers": [
            {"index": w.index, "job": w.job, "frame": w.frame, "percent": w.percent, "elapsed_s": w.elapsed_s}
            for w in s.workers
            if w.frame or w.job
        ],
    }


def item_json(item: ItemName, thumbs: frozenset[str], seconds: float | None) -> dict[str, Any]:
    state = "running" if item.state == "work" else item.state
    return {
        "name": item.original,
        "base": item.base,
        "frame": frame_number(item.base),
        "state": state,
        "host": item.host,
        "failures": item.failures,
        "thumb": item.base.casefold() in thumbs,
        "seconds": seconds,
    }
