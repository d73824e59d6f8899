"""What Envy IO shows about jobs: counts per state, reasons for failures, progress and ETA."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from envy.platform.host import os_name
from envy.render.claims import ItemPattern, sort_listing
from envy.render.jobs import Job
from envy.render.remap import PathRemap
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout

_REASON_RE = re.compile(r"^ENVY FAILED: (.*)$")


@dataclass
class JobSummary:
    job: Job
    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    error: str = ""
    failures: dict[str, str] = field(default_factory=dict)  # item -> reason

    @property
    def total(self) -> int:
        return self.pending + self.running + self.done + self.failed

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0

    def to_json(self) -> dict:
        j = self.job
        return {"id": j.id, "name": j.name, "state": j.state, "renderer": j.renderer, "priority": j.priority,
                "source": j.source, "done": self.done, "running": self.running, "failed": self.failed,
                "pending": self.pending, "total": self.total, "failures": self.failures, "error": self.error}


def work_folder(layout: ShareLayout, job: Job, remap: PathRemap) -> Path:
    if job.kind == "tasks":
        return job.tasks_dir(layout)
    return Path(remap.apply(job.source, os_name()))


def summarize(layout: ShareLayout, job: Job, remap: PathRemap, fs: ShareFS, reasons: bool = True) -> JobSummary:
    summary = JobSummary(job)
    try:
        listing = sort_listing(fs.listdir(work_folder(layout, job, remap)), ItemPattern(job.extensions))
    except OSError as exc:
        summary.error = f"cannot list items: {exc.strerror or exc}"
        return summary
    summary.pending, summary.running = len(listing.pending), len(listing.working)
    summary.done, summary.failed = len(listing.done), len(listing.failed)
    if reasons and listing.failed:
        for item in listing.failed:
            summary.failures[item.original] = failure_reason(layout, job, item.base, item.host, item.failures)
    return summary


def failure_reason(layout: ShareLayout, job: Job, base: str, host: str, attempt: int) -> str:
    """The reason written at the end of the item's last attempt log."""
    path = job.logs_dir(layout) / f"{base}.{host.lower()}.{attempt}.log"
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return "no log found"
    for line in reversed(tail):
        m = _REASON_RE.match(line.strip())
        if m:
            return m.group(1)
    return "see " + str(path)
