"""What a long-running loop does with an exception it did not expect (issue 9, Must-hold 9).

An agent's loops (the poll, the heartbeat, the workers, the reclaimer, NIMBY,
the notify outbox, the process monitor) run for the agent's whole life. A bug,
a bad file that slipped past a reader, or a ``MemoryError`` (an ``Exception``,
but not an ``OSError``: a 2 GB file used to kill the agent with its status
still "idle") must not end one. Each loop owns a ``LoopGuard``: the loop
catches ``Exception`` around one round, tells the guard, and waits the delay
it returns before the next round.

The guard logs the first failure of each kind (exception class and where it
was raised) with its traceback, and after that one line every
``REPEAT_EVERY`` failures of that kind, so a failure that repeats every round
does not fill the log. The delay doubles from ``first`` to ``longest`` while
rounds keep failing; ``ok()`` after a good round starts again from ``first``.
"""

from __future__ import annotations

import logging
import os
import traceback

REPEAT_EVERY = 100
MAX_KINDS = 100  # bounded memory: a loop that fails in ever new places keeps counting the first ones


class LoopGuard:
    """One loop's unexpected failures. Owned by the loop's thread (no lock)."""

    def __init__(self, what: str, logger: logging.Logger, first: float = 1.0, longest: float = 30.0) -> None:
        self.what = what
        self._log = logger
        self._first = first
        self._longest = longest
        self._delay = 0.0
        self._counts: dict[tuple[str, str], int] = {}

    @property
    def failing(self) -> bool:
        return self._delay > 0

    def failed(self, exc: BaseException) -> float:
        """Log ``exc`` (once per kind) and return how long to wait before the next round."""
        kind = (type(exc).__name__, _where(exc))
        count = self._counts.get(kind, 0) + 1
        if kind in self._counts or len(self._counts) < MAX_KINDS:
            self._counts[kind] = count
        if count == 1:
            self._log.error("%s failed unexpectedly (%s: %s); going on with backoff", self.what, kind[0], exc,
                            exc_info=(type(exc), exc, exc.__traceback__))
        elif count % REPEAT_EVERY == 0:
            self._log.error("%s failed again: %s at %s (%d times so far)", self.what, kind[0], kind[1], count)
        self._delay = min(max(self._delay * 2, self._first), self._longest)
        return self._delay

    def ok(self) -> None:
        """A round went well: the next failure waits ``first`` again (its kind is still not logged twice)."""
        if self._delay:
            self._log.info("%s works again", self.what)
        self._delay = 0.0


def _where(exc: BaseException) -> str:
    """The innermost frame that raised ``exc``: file and line (the same bug, the same kind)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ is not None else []
    if not frames:
        return "?"
    last = frames[-1]
    return f"{os.path.basename(last.filename)}:{last.lineno}"
