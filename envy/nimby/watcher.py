"""The NIMBY thread: reads the machine every poll and makes the renders follow the decision.

It owns its state (the last decision) and publishes it as an immutable
``Decision`` that the heartbeat reads whole. It acts only through
``RenderControl``, which the render loop implements, and only on a change of
decision, except that ``pause`` and ``nice`` are re-applied every poll so that a
render started just before the change is caught within one poll.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from envy.loop_guard import LoopGuard
from envy.nimby.decide import NICE, PAUSE, RUN, STOP, Decision, decide
from envy.nimby.settings import NimbySettings
from envy.platform.idle import MachineUse, MachineUseReader

log = logging.getLogger(__name__)

_JOIN_S = 1.0


class RenderControl(Protocol):
    """What the watcher may do to the agent's renders. All calls come from the watcher thread."""

    def render_pids(self) -> list[int]:
        """The root pids of the renders running now (their trees are the agent's own CPU use)."""

    def hold(self, reason: str) -> None:
        """Take no new frames until ``release``; the frames in hand are not touched."""

    def release(self) -> None:
        """Take frames again."""

    def suspend(self) -> None:
        """Suspend every running render tree (idempotent)."""

    def resume(self) -> None:
        """Resume every render tree ``suspend`` paused."""

    def give_back(self, reason: str) -> None:
        """Stop every render and give its frame back at once (pending again, failure count kept)."""

    def lowest_priority(self) -> None:
        """Put every running render tree at the OS's lowest priority."""


class NimbyWatcher:
    """Start with ``start()``; ``stop()`` resumes anything it paused and returns within one wait."""

    def __init__(self, settings: NimbySettings | Callable[[], NimbySettings], reader: MachineUseReader,
                 control: RenderControl, poll_s: float | Callable[[], float],
                 clock: Callable[[], dt.time] = lambda: dt.datetime.now().time()) -> None:
        # Callables are read at each poll, so a reload() reaches the watcher.
        self._settings = settings if callable(settings) else (lambda: settings)
        self._reader = reader
        self._control = control
        self._poll_s = poll_s if callable(poll_s) else (lambda: poll_s)
        self._clock = clock
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="envy-nimby", daemon=True)
        self.decision = Decision(RUN)  # replaced whole, read by the heartbeat

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; renders it paused are resumed (so that a stopping agent can end them at once)."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=_JOIN_S)
        if self._thread.is_alive():  # stuck in a slow reading: do not let the agent's stop wait for it
            self._control.resume()

    def poll_once(self) -> Decision:
        settings = self._settings()
        if settings.when_in_use == "keep" and settings.render_hours is None:
            use = MachineUse(None)  # nothing to watch for: spare the machine the readings
        else:
            use = self._reader.read(self._control.render_pids())
        new = decide(settings, use, self._clock())
        self._apply(self.decision, new)
        self.decision = new
        return new

    def _run(self) -> None:
        guard = LoopGuard("the NIMBY check", log)  # this thread's own
        try:
            while not self._stopped.is_set():
                try:
                    self.poll_once()
                    guard.ok()
                    pause = self._poll_s()
                except Exception as exc:  # MemoryError included: someone at the machine is still watched for
                    pause = max(self._poll_s(), guard.failed(exc))
                self._stopped.wait(pause)
        finally:
            if self.decision.action == PAUSE:
                self._control.resume()  # the agent is stopping: its stop kills running trees, paused or not
            self.decision = Decision(RUN)

    def _apply(self, old: Decision, new: Decision) -> None:
        if new.action != old.action:
            log.info("NIMBY: %s", new.status_text or "machine free again: rendering")
        if old.action == PAUSE and new.action != PAUSE:
            self._control.resume()  # also before a give-back: a stopped process ignores SIGTERM
        if new.action == PAUSE:
            self._control.hold(new.reason)
            self._control.suspend()
        elif new.action == STOP:
            if old.action != STOP or self._control.render_pids():
                self._control.hold(new.reason)
                self._control.give_back(new.reason)
        elif new.action == NICE:
            if old.action in (PAUSE, STOP):
                self._control.release()
            self._control.lowest_priority()
        elif old.action in (PAUSE, STOP):
            self._control.release()
