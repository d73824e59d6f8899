"""Waiting on a condition with a deadline: the one ``wait_for`` of Envy.

The demo, the tests and the benchmarks all wait for something another process
does (an agent answers, a frame is renamed, a mount goes live). A bare
``sleep`` either waits too long or not long enough on a busy machine; this
polls a condition until it holds or a deadline passes, and a timeout says what
it was waiting for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not hold before the deadline (the message says which condition)."""


def wait_for(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.05,
    *,
    retry_on: tuple[type[Exception], ...] = (),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Call ``condition`` until it returns a truthy value, and return that value.

    ``what`` names the condition in the timeout message ("lab1-01 to heartbeat").
    The condition is tried once more at the deadline, so a slow last poll is not
    lost. Exceptions of the types in ``retry_on`` count as "not yet" (the last
    one is chained to the timeout); any other exception propagates at once: a
    process that died is no reason to keep waiting. ``clock`` and ``sleep`` are
    a seam for tests of this function.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this loop
    if timeout < 0 or interval <= 0:
        raise ValueError(f"wait_for: timeout must be >= 0 and interval > 0 (got {timeout!r}, {interval!r})")
    deadline = clock() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except retry_on as exc:
            last_error = exc
        left = deadline - clock()
        if left <= 0:
            break
        sleep(min(interval, left))
    detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
    raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}{detail}") from last_error
