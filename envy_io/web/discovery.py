"""What the web monitor's poller reads each poll of the agents and jobs, and what only now and then.

``envy-io monitor`` lists ``status/`` and ``jobs/`` at every refresh. The web
monitor reads every known status file and job file at every poll too (a
heartbeat, a pause or a priority change shows within one poll), but lists the
two folders only every ``DISCOVER_S`` seconds, or at once after an action
from this process: the listings only find agents and jobs that are new or
gone, and a new one showing up to 10 s late costs nothing, while the two
listings were about a quarter of a poll's share operations (issue 12: at
most the monitor's operations with the page open; docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable

from envy.render.jobs import Job, JobError, list_jobs, load_job
from envy_io.agents import AgentBoard

DISCOVER_S = 10.0


class FarmReader:
    """Reads agents into the board and returns the jobs; owned by the poller thread."""

    def __init__(self, board: AgentBoard, clock: Callable[[], float]) -> None:
        self.board = board
        self.clock = clock
        self._discovered_at: float | None = None
        self._job_ids: list[str] = []

    def read(self, discover: bool = False) -> tuple[list[Job], list[str]]:
        """The jobs now, after refreshing the board; ``discover``: list the folders whatever the time."""
        now = self.clock()
        if discover or self._discovered_at is None or now - self._discovered_at >= DISCOVER_S:
            self._discovered_at = now
            warnings = list(self.board.refresh())
            jobs, job_warnings = list_jobs(self.board.layout, self.board.fs)
            self._job_ids = [job.id for job in jobs]
            return jobs, warnings + job_warnings
        warnings = list(self.board.refresh_hosts(self.board.hosts()))
        known: list[Job] = []
        for job_id in self._job_ids:
            try:
                known.append(load_job(self.board.layout, job_id, self.board.fs))
            except JobError as exc:
                if "no job" not in str(exc):
                    warnings.append(f"skipped job file {job_id}.json: {exc}")
            except (OSError, TypeError, ValueError) as exc:
                warnings.append(f"skipped job file {job_id}.json: {exc}")
        return known, warnings

    def knows(self, job_id: str) -> bool:
        return job_id in self._job_ids
