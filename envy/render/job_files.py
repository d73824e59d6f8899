"""The jobs folder as a rendering agent last read it: unchanged job files are not read again.

A rendering agent looks at ``jobs/`` once per poll interval (its workers and
its reclaimer). Reading every job file at each look costs the file server an
open, a getattr, a read and a close per job, for every rendering agent, every
two seconds, and ``jobs/`` keeps finished and archived jobs: 50 agents and 100
jobs are some 10,000 requests a second. So a job file is read again only when
its size or modification time changed since it was read (one ``stat``, which
the client mostly answers from the attributes its listing brought), and every
job file is read again at least every ``FULL_READ_EVERY_S`` (a 2 s-timestamp
server can keep size and time through a pause and a resume within 2 s) and at
each ``render()`` (with a fresh listing, share/fresh_listing.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from envy.render.jobs import Job, read_job_file
from envy.share.fresh_listing import listdir_fresh
from envy.share.fs import ShareFS
from envy.share.layout import ShareLayout
from envy.share.names import is_junk

# Every job file is read again at least this often, changed or not (module docstring).
FULL_READ_EVERY_S = 30.0


@dataclass(frozen=True)
class _Seen:
    key: tuple[int, int]  # (size, mtime in ns) when read
    job: Job


class JobFiles:
    """Owned by one render loop (its lock held by the caller)."""

    def __init__(self, layout: ShareLayout, fs: ShareFS, clock: Callable[[], float] = time.monotonic) -> None:
        self.layout = layout
        self.fs = fs
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._full_at = float("-inf")

    def read(self, fresh: bool = False) -> tuple[list[Job], list[str]]:
        """Every readable job, oldest first, and warnings; OSError when ``jobs/`` cannot be listed
        (an outage is not an empty farm). ``fresh``: a fresh listing and every file read again."""
        folder = self.layout.jobs_dir
        names = listdir_fresh(self.fs, folder) if fresh else self.fs.listdir(folder)
        now = self.clock()
        full = fresh or now - self._full_at >= FULL_READ_EVERY_S
        if full:
            self._full_at = now
        jobs: list[Job] = []
        warnings: list[str] = []
        seen: dict[str, _Seen] = {}
        for name in sorted(names):
            if is_junk(name) or not name.endswith(".json"):
                continue
            try:
                st = self.fs.stat(folder / name)
                key = (st.st_size, st.st_mtime_ns)
                known = self._seen.get(name)
                job = known.job if known is not None and known.key == key and not full else read_job_file(
                    self.layout, self.fs, name)
            except FileNotFoundError:
                continue  # deleted since the listing
            except (OSError, ValueError, TypeError) as exc:
                warnings.append(f"skipped job file {name}: {exc}")
                continue
            seen[name] = _Seen(key, job)
            jobs.append(job)
        self._seen = seen  # a job gone from the folder is forgotten
        return jobs, warnings
