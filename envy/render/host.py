"""What the render loop, its workers and the reclaimer need from those around them.

``RenderHost`` is what the loop needs from the agent that hosts it;
``WorkerLoop`` and ``ReclaimerLoop`` are what a worker and the reclaimer need
from the loop (so neither imports render_loop.py, which imports them).

A narrow, typed view: envy/render never imports envy/agent. The agent
(envy/agent/agent.py) satisfies ``RenderHost``; a test can pass anything
that has these members.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from envy.config import Config
from envy.protocol.status_seal import StatusSeal
from envy.render.claims import Claim, FolderQueue, Identity, ItemName
from envy.render.jobs import Job
from envy.render.plans import PlanInput, Planners
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout


class ChildOutcome(Protocol):
    """How a render child ended (envy/agent/child.py: ChildResult)."""

    @property
    def returncode(self) -> int | None: ...

    @property
    def killed_reason(self) -> str | None: ...


class RunningChild(Protocol):
    """A started render process (envy/agent/child.py: Child)."""

    def wait(self, timeout: float | None = None) -> ChildOutcome | None: ...

    def stop(self, reason: str = "stopped") -> None: ...


class ChildStarter(Protocol):
    """Starts render processes (envy/agent/processes.py: ProcessHandler)."""

    def start(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        memory_limit_mb: int | None = None,
        on_output: Callable[[str], object] | None = None,
        timeout_s: float = 0.0,
        stall_s: float = 0.0,
    ) -> RunningChild: ...


class RenderHost(Protocol):
    @property
    def config(self) -> Config:
        """The current configuration: read at each use, so a reload() reaches the renders."""
        ...

    @property
    def fs(self) -> ShareFS: ...

    @property
    def layout(self) -> ShareLayout: ...

    @property
    def host(self) -> str: ...

    @property
    def nonce(self) -> str:
        """This agent run's nonce: part of every claim name it makes."""
        ...

    @property
    def state_dir(self) -> Path:
        """This agent's local private folder (render mode is remembered there)."""
        ...

    @property
    def processes(self) -> ChildStarter: ...

    @property
    def quitting(self) -> threading.Event:
        """Set when the agent quits: every render thread waits on it."""
        ...

    def report_once(self, message: str) -> None:
        """Log a warning once per distinct message (bad share files are seen at every poll)."""
        ...


class WorkerLoop(Protocol):
    """What a render worker needs from its render loop (render_loop.py: RenderLoop)."""

    @property
    def host(self) -> RenderHost: ...

    @property
    def planners(self) -> Planners: ...

    @property
    def stopping(self) -> threading.Event: ...

    def next_claim(self) -> tuple[Job, Claim] | None: ...

    def wait_for_work(self) -> None: ...

    def queue_for(self, job: Job) -> FolderQueue: ...

    def plan_input(self, job: Job, claim: Claim | None) -> PlanInput: ...

    def count_done(self, job_id: str, frame: str, seconds: float) -> None: ...

    def item_finished(self, job: Job) -> None: ...

    def note_failure(self, item: ItemName) -> None: ...

    def max_retries(self, job: Job) -> int: ...


class ReclaimerLoop(Protocol):
    """What the reclaimer needs from its render loop (render_loop.py: RenderLoop)."""

    @property
    def host(self) -> RenderHost: ...

    @property
    def me(self) -> Identity: ...

    @property
    def active(self) -> bool: ...

    @property
    def hold_reason(self) -> str: ...

    @property
    def status_seal(self) -> StatusSeal | None:
        """Signed mode: the check that a status file is the farm key's (None: every status counts)."""
        ...

    @property
    def jobs_readable(self) -> bool: ...

    @property
    def work_ready(self) -> threading.Event: ...

    def jobs(self) -> list[Job]: ...

    def queue_for(self, job: Job) -> FolderQueue: ...

    def free_workers(self) -> int: ...
