"""``RenderControl`` over real process trees: suspend, resume and lower the agent's renders.

Holding new frames and giving frames back belong to the render loop, which
passes them in as callables; this class does the process side through
envy/platform/processes.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import psutil

from envy.platform.processes import (
    collect_tree,
    lowest_priority,
    resume_procs,
    suspend_procs,
)


class RunningRender(Protocol):
    pid: int
    create_time: float


class ProcessTreeControl:
    """Acts on the trees of ``renders()``; remembers what it suspended so resume finds them all."""

    def __init__(self, renders: Callable[[], Sequence[RunningRender]], hold: Callable[[str], None],
                 release: Callable[[], None], give_back: Callable[[str], None]) -> None:
        self._renders = renders
        self._hold = hold
        self._release = release
        self._give_back = give_back
        self._lock = threading.Lock()  # guards _suspended (the watcher and a stopping agent both resume)
        self._suspended: dict[int, psutil.Process] = {}

    def render_pids(self) -> list[int]:
        pids: list[int] = []
        for render in self._renders():
            pids += [p.pid for p in collect_tree(render.pid, create_time=render.create_time)]
        return pids

    def _trees(self) -> list[psutil.Process]:
        procs: list[psutil.Process] = []
        for render in self._renders():
            procs += collect_tree(render.pid, create_time=render.create_time)
        return procs

    def hold(self, reason: str) -> None:
        self._hold(reason)

    def release(self) -> None:
        self._release()

    def suspend(self) -> None:
        with self._lock:
            fresh = [p for p in self._trees() if p.pid not in self._suspended]
            for pid in suspend_procs(fresh):
                self._suspended[pid] = next(p for p in fresh if p.pid == pid)

    def resume(self) -> None:
        with self._lock:
            procs, self._suspended = list(self._suspended.values()), {}
        resume_procs(procs)

    def give_back(self, reason: str) -> None:
        self.resume()
        self._give_back(reason)

    def lowest_priority(self) -> None:
        lowest_priority(self._trees())
