"""A background look at the agents while the shell waits for input.

Every few seconds it re-reads the status files (keeping the shell's idea of
who is alive current, and the host names for completion fresh; the sightings
are saved for ``envy-io status``) and reports
changes worth interrupting for: an agent going silent, coming back, or
appearing. A stoppable thread: ``stop()`` returns at once (watchdog style).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from envy_io.agents import AgentBoard

log = logging.getLogger(__name__)


class AgentWatcher(threading.Thread):
    def __init__(self, board: AgentBoard, interval: float, notify: Callable[[str], None]) -> None:
        super().__init__(name="envy-io-watcher", daemon=True)
        self.board = board
        self.interval = interval
        self.notify = notify
        self.stopped = threading.Event()
        # Agents already on the board when the shell started are not news.
        self._known: set[str] = {host.lower() for host in board.hosts()}
        self._alive: set[str] = set()
        self._silent: set[str] = set()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.check()
            except Exception:  # a bad status file or a share hiccup must not kill the watcher
                log.debug("agent watcher failed", exc_info=True)

    def check(self) -> None:
        for warning in self.board.refresh():
            log.debug("%s", warning)
        self.board.save()  # a small local file: ``envy-io status`` run meanwhile knows what we saw
        for view in self.board.views():
            host, key = view.status.host, view.status.host.lower()
            if key not in self._known:
                self._known.add(key)
                self.notify(f"new agent {host} ({view.status.state})")
            if view.alive and key not in self._alive:
                self._alive.add(key)
                if key in self._silent:
                    self._silent.discard(key)
                    self.notify(f"{host} is back ({view.status.state})")
            elif not view.alive and key in self._alive:
                self._alive.discard(key)
                self._silent.add(key)
                self.notify(f"{host} has gone silent: no heartbeat for {self.board.tracker.dead_after:g} s")

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout=5)

    def __enter__(self) -> AgentWatcher:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
